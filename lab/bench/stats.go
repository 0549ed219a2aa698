package bench

import (
	"math"
	"slices"
	"time"
)

// Spread summarises one figure over several runs: the median, and the
// lowest and highest run.
type Spread struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// spreadOf summarises values; the zero Spread for none. NaNs and
// infinities (a figure a run could not measure) are dropped.
func spreadOf(values []float64) Spread {
	var v []float64
	for _, x := range values {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Spread{}
	}
	sorted := slices.Clone(v)
	slices.Sort(sorted)
	return Spread{Median: median(sorted), Min: sorted[0], Max: sorted[len(sorted)-1], Values: v}
}

// spreadBy collects f over xs and summarises it.
func spreadBy[T any](xs []T, f func(T) float64) Spread {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		v = append(v, f(x))
	}
	return spreadOf(v)
}

// median of sorted values: the middle one, or the mean of the middle two.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// medianOf returns the median of unsorted values.
func medianOf(values []float64) float64 {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	return median(sorted)
}

// deviationPct is the largest distance of any value from the median, in
// percent of the median: the "±" of a constancy figure. 0 when there is no
// median to divide by.
func deviationPct(values []float64) float64 {
	m := medianOf(values)
	if m == 0 || math.IsNaN(m) {
		return 0
	}
	worst := 0.0
	for _, v := range values {
		worst = max(worst, math.Abs(v-m)/m*100)
	}
	return worst
}

// quantile of sorted durations by the nearest-rank method; 0 for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// perSecond is n per d, 0 when d is not positive.
func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// thirds returns the median of the first and of the last third of samples.
func thirds(samples []float64) (head, tail float64) {
	n := len(samples)
	if n == 0 {
		return 0, 0
	}
	k := max(1, n/3)
	return medianOf(samples[:k]), medianOf(samples[n-k:])
}

// grows reports whether a lag series grows over a step: the last third's
// median is above floor and above 1.5 times the first third's. A lag that
// grows linearly from zero gives a ratio near 5; one that holds, near 1.
func grows(samples []float64, floor float64) bool {
	head, tail := thirds(samples)
	return tail > floor && tail > 1.5*head
}
