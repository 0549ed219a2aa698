package procstack

import "github.com/alpes/alpes/lab/stack"

// placement is where a stack's processes listen: every component of the
// description on free loopback ports, and spare ports for further
// instances, all reserved at once so that none is handed out twice.
type placement struct {
	// components are the description's components at their addresses in
	// this stack, by name.
	components map[string]stack.Component
	spares     []string
}

// place reserves the ports of every component and spares more.
func place(spares int) (*placement, error) {
	n := spares
	for _, c := range stack.Components() {
		n++
		if c.AdminAddr != "" {
			n++ // the broker's admin API
		}
	}
	addrs, err := freeAddrs(n)
	if err != nil {
		return nil, err
	}
	p := &placement{components: map[string]stack.Component{}, spares: addrs}
	for _, c := range stack.Components() {
		admin := ""
		if c.AdminAddr != "" {
			admin = p.spare()
		}
		p.components[c.Name] = c.At(p.spare(), admin)
	}
	return p, nil
}

// spare hands out the next reserved address; it panics when none is left,
// which is a miscount in Start.
func (p *placement) spare() string {
	a := p.spares[0]
	p.spares = p.spares[1:]
	return a
}

// url is the base URL of the HTTP endpoints of the component called name.
func (p *placement) url(name string) string { return "http://" + p.components[name].Addr }
