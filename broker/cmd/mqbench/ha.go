package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// runCatchup measures how fast a slave catches up with its master: it
// polls both brokers' commitLogMaxOffset (GET_BROKER_RUNTIME_INFO) until
// the slave reaches the master's end, which must not move meanwhile.
func runCatchup(o options) error {
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	defer cl.Close()
	target, err := maxPhy(cl, o.broker)
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	var from int64
	start := time.Now()
	for {
		if from, err = maxPhy(cl, o.slave); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			return fmt.Errorf("slave: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start = time.Now()
	last, moved := from, start
	for {
		cur, err := maxPhy(cl, o.slave)
		if err != nil {
			return fmt.Errorf("slave: %w", err)
		}
		if cur != last {
			last, moved = cur, time.Now()
		}
		if cur >= target {
			el := time.Since(start)
			mib := float64(target-from) / (1 << 20)
			fmt.Printf("mode=catchup: slave from %d to %d: %.0f MiB in %v = %.0f MiB/s\n",
				from, target, mib, el.Round(time.Millisecond), mib/el.Seconds())
			return nil
		}
		if time.Since(moved) > 30*time.Second {
			return fmt.Errorf("slave stuck at %d for 30 s, master at %d", cur, target)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// maxPhy asks a broker for its commit log's max offset.
func maxPhy(cl *remoting.Client, addr string) (int64, error) {
	resp, err := cl.Invoke(addr, wire.NewRequest(wire.GetBrokerRuntimeInfo, nil, nil), 3*time.Second)
	if err != nil {
		return 0, err
	}
	if resp.Code != wire.Success {
		return 0, fmt.Errorf("runtime info: %s %s", wire.ResponseName(resp.Code), resp.Remark)
	}
	var kv wire.KVTable
	if err := wire.UnmarshalLenient(resp.Body, &kv); err != nil {
		return 0, fmt.Errorf("runtime info: %w", err)
	}
	return strconv.ParseInt(kv.Table["commitLogMaxOffset"], 10, 64)
}

// runLag offers -rate msgs/s to the master (rate mode) and samples the
// replication lag meanwhile: every 5 ms it reads the master's and then the
// slave's commitLogMaxOffset; a lag sample is the time from a master
// reading until a slave reading at or past it (so ±5 ms resolution).
func runLag(o options) error {
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	defer cl.Close()
	type mark struct {
		at  time.Time
		off int64
	}
	var pending []mark
	lat := &latencies{}
	var ds []time.Duration
	o.mode = "rate"
	done := make(chan error, 1)
	go func() { done <- runSend(o) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			lat.add(ds)
			fmt.Printf("mode=lag rate=%d: %d samples of replication lag %s\n", o.rate, len(ds), lat.report())
			return err
		case <-tick.C:
		}
		m, err := maxPhy(cl, o.broker)
		if err != nil {
			return fmt.Errorf("master: %w", err)
		}
		if len(pending) == 0 || pending[len(pending)-1].off < m {
			pending = append(pending, mark{time.Now(), m})
		}
		s, err := maxPhy(cl, o.slave)
		if err != nil {
			return fmt.Errorf("slave: %w", err)
		}
		now, i := time.Now(), 0
		for ; i < len(pending) && pending[i].off <= s; i++ {
			ds = append(ds, now.Sub(pending[i].at))
		}
		pending = pending[i:]
	}
}
