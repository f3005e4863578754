package admin

import (
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// DefaultParallel is how many brokers or name servers one call asks at
// once unless SetParallel says otherwise: the masters of most clusters in
// one round, without flooding a host with connections.
const DefaultParallel = 16

// SetParallel sets how many brokers or name servers one call asks at
// once; n < 1 restores DefaultParallel.
func (a *Admin) SetParallel(n int) {
	if n < 1 {
		n = DefaultParallel
	}
	a.parallel = n
}

// Parallel returns how many brokers or name servers one call asks at once.
func (a *Admin) Parallel() int { return a.parallel }

// FanOut runs fn(0) … fn(n-1), at most limit at once (limit < 1:
// DefaultParallel), and waits for them, so k peers that do not answer cost
// one timeout instead of k. Each fn stores its result at its own index: the
// outcome does not depend on which peer answers first. The error returned
// is the one of the lowest index that failed, the one a loop over the same
// list stops at; calls past a failed one that have not started yet are
// skipped, as such a loop would never have made them. fn should not fan
// out in turn: the limits would multiply.
func FanOut(n, limit int, fn func(i int) error) error {
	if limit < 1 {
		limit = DefaultParallel
	}
	errs := make([]error, n)
	// first is the lowest index failed so far. Only calls past it are
	// skipped, so every call below the lowest failure runs and the error
	// returned does not depend on timing.
	var first atomic.Int64
	first.Store(int64(n))
	var g errgroup.Group
	g.SetLimit(limit)
	for i := range n {
		if int64(i) > first.Load() {
			break
		}
		g.Go(func() error {
			if int64(i) > first.Load() {
				return nil
			}
			if errs[i] = fn(i); errs[i] != nil {
				for f := first.Load(); int64(i) < f; f = first.Load() {
					if first.CompareAndSwap(f, int64(i)) {
						break
					}
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
