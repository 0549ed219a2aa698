package pulsarsend

import (
	"bufio"
	"errors"
	"fmt"
	"time"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// The three goroutines that serve a connection: writer, reader, keeper.

// writeLoop encodes and writes what is queued, in order, and flushes the
// buffered writer whenever the queue is empty.
func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var batch, spare []outgoing
	var scratch []byte
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		for {
			c.mu.Lock()
			if c.err != nil {
				c.mu.Unlock()
				return
			}
			// Two slices take turns: the queue, and the batch being written.
			batch, c.queue = c.queue, spare[:0]
			c.mu.Unlock()
			spare = batch
			if len(batch) == 0 {
				break
			}
			publishTime := uint64(time.Now().UnixMilli())
			for i := range batch {
				var err error
				scratch, err = c.write(w, scratch[:0], &batch[i], publishTime)
				if err != nil {
					c.fail(err)
					return
				}
				batch[i] = outgoing{}
			}
		}
		if err := w.Flush(); err != nil {
			c.fail(fmt.Errorf("%w: writing: %w", ErrConnection, err))
			return
		}
	}
}

// write encodes o into w, using scratch for the frame's head.
func (c *conn) write(w *bufio.Writer, scratch []byte, o *outgoing, publishTime uint64) ([]byte, error) {
	if o.cmd != nil {
		frame, err := pulsarwire.AppendFrame(scratch, o.cmd, nil)
		if err != nil {
			return scratch, fmt.Errorf("%w: %w", ErrConnection, err)
		}
		if _, err := w.Write(frame); err != nil {
			return frame, fmt.Errorf("%w: writing: %w", ErrConnection, err)
		}
		return frame, nil
	}
	if o.batch != nil {
		var frame []byte
		var size int
		frame, c.batchBody, size = appendBatchSend(scratch, c.batchBody, o.p.id, o.p.name, publishTime, o.batch)
		if size > c.maxMessageSize {
			o.p.fail(fmt.Errorf("%w: sequence ids %d to %d: batch of %d bytes exceeds the broker's limit of %d",
				ErrSendRefused, *o.batch[0].Msg.SequenceID, *o.batch[len(o.batch)-1].Msg.SequenceID, size, c.maxMessageSize))
			return frame, nil
		}
		if _, err := w.Write(frame); err != nil {
			return frame, fmt.Errorf("%w: writing: %w", ErrConnection, err)
		}
		return frame, nil
	}
	head, size := appendSend(scratch, o.p.id, o.p.name, o.seq, publishTime, o.msg, o.p.corruptChecksum)
	if size > c.maxMessageSize {
		// The producer fails, not the connection: nothing was written.
		o.p.fail(fmt.Errorf("%w: sequence id %d: message of %d bytes exceeds the broker's limit of %d", ErrSendRefused, o.seq, size, c.maxMessageSize))
		return head, nil
	}
	if _, err := w.Write(head); err != nil {
		return head, fmt.Errorf("%w: writing: %w", ErrConnection, err)
	}
	if _, err := w.Write(o.msg.Payload); err != nil {
		return head, fmt.Errorf("%w: writing: %w", ErrConnection, err)
	}
	return head, nil
}

// readLoop reads frames until the connection fails, and dispatches them.
func (c *conn) readLoop(r *frameReader) {
	for {
		f, err := r.next()
		if err != nil {
			if c.alive() {
				c.fail(fmt.Errorf("%w: reading: %w", ErrConnection, err))
			}
			return
		}
		c.heard.Store(true)
		if f.cmd == nil {
			if p := (*c.producers.Load())[f.receipt.producerID]; p != nil {
				if err := p.receipted(f.receipt); err != nil {
					c.fail(err)
					return
				}
			}
			continue
		}
		c.dispatch(f.cmd)
	}
}

// dispatch handles a command other than a receipt.
func (c *conn) dispatch(cmd *wirev1.BaseCommand) {
	switch cmd.GetType() {
	case wirev1.BaseCommand_PING:
		c.enqueue(outgoing{cmd: &wirev1.BaseCommand{Type: wirev1.BaseCommand_PONG.Enum(), Pong: &wirev1.CommandPong{}}})
	case wirev1.BaseCommand_SEND_ERROR:
		e := cmd.GetSendError()
		if p := (*c.producers.Load())[e.GetProducerId()]; p != nil {
			p.fail(fmt.Errorf("%w: sequence id %d: %s: %s", ErrSendRefused, e.GetSequenceId(), e.GetError(), e.GetMessage()))
		}
	case wirev1.BaseCommand_CLOSE_PRODUCER:
		if p := (*c.producers.Load())[cmd.GetCloseProducer().GetProducerId()]; p != nil {
			c.removeProducer(p)
			p.fail(ErrClosedByBroker)
		}
	case wirev1.BaseCommand_LOOKUP_RESPONSE:
		c.answer(cmd.GetLookupTopicResponse().GetRequestId(), cmd)
	case wirev1.BaseCommand_PRODUCER_SUCCESS:
		c.answer(cmd.GetProducerSuccess().GetRequestId(), cmd)
	case wirev1.BaseCommand_SUCCESS:
		c.answer(cmd.GetSuccess().GetRequestId(), cmd)
	case wirev1.BaseCommand_ERROR:
		c.answer(cmd.GetError().GetRequestId(), cmd)
	}
}

// errSilent fails a connection on which nothing arrived for KeepAlive.
var errSilent = errors.New("nothing from the broker")

// keep sends a PING when the connection has been silent for half of
// KeepAlive, fails it when silent for KeepAlive, and fails it when a
// producer with sends pending has had no receipt for ReceiptTimeout.
func (c *conn) keep() {
	interval := min(c.opts.KeepAlive, c.opts.ReceiptTimeout) / 2
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastHeard := time.Now()
	for {
		var now time.Time
		select {
		case <-c.done:
			return
		case now = <-tick.C:
		}
		if c.heard.Swap(false) {
			lastHeard = now
		}
		// Ticks are interval apart, give or take a little: round silence to
		// the nearest tick before comparing.
		silent := now.Sub(lastHeard)
		switch rounded := silent + interval/2; {
		case rounded >= c.opts.KeepAlive:
			c.fail(fmt.Errorf("%w: %w for %s", ErrConnection, errSilent, silent.Round(time.Second)))
			return
		case rounded >= c.opts.KeepAlive/2:
			c.enqueue(outgoing{cmd: &wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}}})
		}
		for _, p := range *c.producers.Load() {
			if err := p.checkReceipts(now, c.opts.ReceiptTimeout); err != nil {
				c.fail(err)
				return
			}
		}
	}
}
