package bench

import (
	"fmt"
	"strings"
)

// mdScale renders the consumer stage's scaling: its method, a row per
// number of instances, and what the checks found.
func (rep *Report) mdScale(w *mdWriter) {
	sc := rep.Scale
	if sc == nil {
		return
	}
	w.line("")
	w.line("## Scaling the consumer stage")
	w.line("")
	if sc.NotMeasured != "" {
		w.linef("Not measured: %s.", mdCell(sc.NotMeasured))
		return
	}
	w.linef("**Method.** The consumer stage is orders and payments, the services that run as several processes on one Key_Shared subscription per topic (`procstack` Instances): for each number of instances, %s, a fresh stack runs that many processes of orders and as many of payments, and every one of them is held to %s of one core: each runs in a CPU cgroup of its own that allows it at most %s ms of CPU in every %s ms (the %s). The rest of the pipeline (Postgres, the broker, the relay, the bff, reporting) runs unlimited, so the stage bounds the drain and more instances get more CPU: that is how scaling shows on a machine with two cores. After %d warm-up orders, each run stops the stage (SIGSTOP), places a backlog of %s orders through the bff at %s/s (the open-loop client, which does not wait for outcomes here) and waits until the relay has published all of it, then resumes the stage and times the drain: from the resumption to the commit of the last order's settlement in orders (`pg_xact_commit_timestamp`, `track_commit_timestamp=on`). Orders settled per second is the backlog divided by that time. Stage CPU per order is the CPU time of the stage's processes from the resumption until the pipeline is idle again, divided by the backlog; quota used is, per service, its processes' CPU time over the drain divided by what their shares allowed over it: near 100 %% for the service whose shares bound the drain, less when the box could not give the stage its shares or something else held it up. Speedup is against one instance, in the same run of the bench.",
		joinInts(rep.Sizes.ScaleInstances), num(sc.CPUShare, 3), num(sc.CPUShare*float64(cfsPeriod.Milliseconds()), 1), num(float64(cfsPeriod.Milliseconds()), 0), sc.CPUControl,
		min(scaleWarmUp, sc.Orders), num(float64(sc.Orders), 0), num(sc.PlaceRate, 0))
	w.line("")
	w.linef("**Per-order order.** After the runs, every order the stack held is checked: %s. The check orders each consumer's inbox rows by the commit timestamp of the transaction that applied them and compares the source commit times the relay carried (`source_committed_at`); the producers' outboxes say which order each event belongs to. In orders and payments each of an order's events is also caused by the stage's applying the one before, so a violation there would mean a message applied out of its causal place; in the bff and reporting, one process each, it would mean one topic's messages for a key delivered out of order. lab/oracle then checks the whole stack against the client's ledger (every order once in every database, settled alike everywhere, each event on the broker once and in its order, reporting's timeline in causal order, every inbox complete).", applyOrderRule)
	w.line("")
	w.table("instances", "processes at "+num(sc.CPUShare, 3)+" core", "orders settled/s", "speedup", "drain", "stage CPU per order (orders + payments)", "quota used, orders / payments", "applied out of order", "oracle")
	for _, st := range sc.Steps {
		drain := ""
		if n := len(st.Runs); n > 0 {
			drain = num(st.Runs[n-1].DrainSeconds, 2) + " s"
			if n > 1 {
				drain += " (last run)"
			}
		}
		oracleCell := "—"
		if v := st.Oracle; v != nil {
			oracleCell = fmt.Sprintf("clean, %d checks", len(v.Checks))
			if !v.OK() {
				oracleCell = fmt.Sprintf("**%d violations**", v.Violations())
				if !v.Quiet {
					oracleCell += ", not quiet"
				}
			}
		}
		outOfOrder := fmt.Sprintf("%d of %s orders", st.Order.Violations, num(float64(st.Order.Orders), 0))
		if st.Order.Violations > 0 {
			outOfOrder = "**" + outOfOrder + "**"
		}
		w.row(fmt.Sprint(st.Instances), fmt.Sprint(st.Processes), spread(st.Rate, 1, ""), num(st.Speedup, 2)+"×", drain,
			fmt.Sprintf("%s (%s + %s)", spread(st.StageCPU, 0, " µs"), num(st.ServiceCPU["orders"].Median, 0), num(st.ServiceCPU["payments"].Median, 0)),
			spread(st.QuotaUsed["orders"], 0, " %")+" / "+spread(st.QuotaUsed["payments"], 0, " %"), outOfOrder, oracleCell)
	}
	for _, st := range sc.Steps {
		for _, e := range st.Order.Examples {
			w.linef("- %d instances: %s", st.Instances, mdCell(e))
		}
		if v := st.Oracle; v != nil && !v.OK() {
			w.line("")
			w.linef("The oracle on the stack with %d instances:", st.Instances)
			w.line("")
			w.line("```")
			w.line(strings.TrimRight(v.String(), "\n"))
			w.line("```")
		}
	}
	if len(sc.Steps) > 0 {
		if runs := sc.Steps[0].Runs; len(runs) > 0 {
			last := runs[len(runs)-1]
			w.line("")
			w.linef("The stage was stopped for %s s while a backlog was placed and published (one instance, last run); the client placed %s orders, %s accepted, at accept p99 %s ms. Every process's CPU per order over that drain: %s µs.",
				num(last.FrozenSeconds, 1), num(float64(last.Client.Sent), 0), num(float64(last.Client.Accepted), 0), num(last.Client.AcceptLatency.P99, 1), num(last.Cost.TotalMicros, 0))
		}
	}
}

// joinInts lists numbers as "1, 2 and 4".
func joinInts(ns []int) string {
	var s []string
	for _, n := range ns {
		s = append(s, fmt.Sprint(n))
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
