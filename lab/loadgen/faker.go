package loadgen

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// faker invents customers and baskets, reproducibly from a seed. It is safe
// for concurrent use.
type faker struct {
	mu   sync.Mutex
	rng  *rand.Rand
	skus []string
}

func newFaker(seed uint64, skus []string) *faker {
	return &faker{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), skus: skus}
}

var (
	firstNames = []string{"Ana", "Bruno", "Camila", "Diego", "Elena", "Felipe", "Gabriela", "Hugo", "Isabel", "Julián", "Karin", "Luca"}
	lastNames  = []string{"Rojas", "Müller", "Gómez", "Rossi", "Dubois", "Moreno", "Keller", "Vargas", "Bianchi", "Suárez"}
	streets    = []string{"Calle del Glaciar", "Bergstrasse", "Via dei Monti", "Chemin du Col", "Carrera de los Andes", "Alpenweg"}
	towns      = []string{"Chamonix", "Zermatt", "Cortina", "Bariloche", "Grindelwald", "Innsbruck", "Manizales"}
)

// order returns a new basket from one of 10,000 recurring customers.
func (f *faker) order() Order {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rng
	n := r.IntN(10_000)
	customer := fmt.Sprintf("customer-%05d", n)
	if n%37 == 0 {
		customer = "blocked-" + customer // about 3% of customers: the fake gateway declines their cards
	}
	o := Order{
		CustomerID: customer,
		Address: fmt.Sprintf("%s %d, %s (%s %s)", streets[n%len(streets)], 1+n%180, towns[n%len(towns)],
			firstNames[n%len(firstNames)], lastNames[(n/len(firstNames))%len(lastNames)]),
	}
	lines := 1 + r.IntN(4)
	seen := map[string]bool{}
	for len(o.Items) < lines {
		sku := f.skus[r.IntN(len(f.skus))]
		if seen[sku] {
			if len(seen) == len(f.skus) {
				break
			}
			continue
		}
		seen[sku] = true
		o.Items = append(o.Items, Item{SKU: sku, Quantity: 1 + r.IntN(3)})
	}
	return o
}
