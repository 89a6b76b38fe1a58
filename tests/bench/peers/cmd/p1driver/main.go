// p1driver: the creation and the stopwatch of P1. It watches Widgets in a
// namespace, optionally creates a canary Widget and waits until the
// implementation under test has marked it done (so every implementation is
// measured once it is up and watching), then creates N Widgets with a fixed
// number of concurrent POSTs and records, from the start of the creation, when
// each Widget was seen carrying status.bench.done=true. Writes a JSON report.
//
// The backlog variant splits this in two: --phase=create only creates the
// Widgets (before the implementation runs), --phase=wait only watches, timing
// from --start_unix_ns (when the implementation was started).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"herald.dev/tests/bench/peers/internal/kube"
)

type report struct {
	Count         int       `json:"count"`
	CreateWorkers int       `json:"create_workers"`
	CanarySeconds float64   `json:"canary_seconds"`
	CreateSeconds float64   `json:"create_seconds"`
	TotalSeconds  float64   `json:"total_seconds"`
	CreateErrors  int64     `json:"create_errors"`
	DoneSeconds   []float64 `json:"done_seconds"`
	Done          int       `json:"done"`
	TimedOut      bool      `json:"timed_out"`
	StartUnixNs   int64     `json:"start_unix_ns"`
}

func main() {
	namespace := flag.String("namespace", "default", "namespace of the Widgets")
	count := flag.Int("count", 2000, "Widgets to create")
	workers := flag.Int("create_workers", 8, "concurrent POSTs")
	payload := flag.Int("payload_bytes", 256, "size of spec.payload")
	canary := flag.Bool("canary", true, "wait for a canary Widget to be done first")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	out := flag.String("out", "", "write the JSON report here (default stdout)")
	phase := flag.String("phase", "all", "all, create or wait")
	startNs := flag.Int64("start_unix_ns", 0, "with --phase=wait: the start of the timing")
	flag.Parse()

	c, err := kube.New("")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	collection := kube.WidgetsPath(*namespace)

	var mu sync.Mutex
	var start time.Time
	started := false
	doneAt := map[string]float64{}
	canaryDone := make(chan struct{})
	allDone := make(chan struct{})
	ready := make(chan struct{})
	var canaryOnce, allOnce sync.Once

	if *phase == "wait" {
		// Widgets done before the watch started count from the listing.
		start = time.Unix(0, *startNs)
		started = true
	}
	go func() {
		err := c.ListWatch(ctx, collection, func() { close(ready) }, func(_ string, w *kube.Widget) {
			if !w.Status.Bench.Done {
				return
			}
			name := w.Metadata.Name
			if name == "canary" {
				canaryOnce.Do(func() { close(canaryDone) })
				return
			}
			if !strings.HasPrefix(name, "w-") {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !started || doneAt == nil {
				return
			}
			if _, ok := doneAt[name]; !ok {
				doneAt[name] = time.Since(start).Seconds()
				if len(doneAt) == *count {
					allOnce.Do(func() { close(allDone) })
				}
			}
		})
		if err != nil && ctx.Err() == nil {
			log.Fatal(err)
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		log.Fatal("no listing")
	}

	pad := strings.Repeat("x", *payload)
	body := func(name string, i int) []byte {
		b, _ := json.Marshal(map[string]any{
			"apiVersion": "bench.herald.dev/v1", "kind": "Widget",
			"metadata": map[string]any{"name": name},
			"spec":     map[string]any{"index": i, "replicas": 1 + i%5, "payload": pad},
		})
		return b
	}
	create := func(name string, i int) error {
		for attempt := 0; ; attempt++ {
			code, data, err := c.Do(ctx, "POST", collection, "application/json", body(name, i))
			if err == nil && (code == 201 || code == 409) {
				return nil
			}
			if ctx.Err() != nil || attempt >= 5 {
				return fmt.Errorf("create %s: %d %v %s", name, code, err, data)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	rep := report{Count: *count, CreateWorkers: *workers}
	if *phase == "wait" {
		rep.StartUnixNs = *startNs
		select {
		case <-allDone:
		case <-ctx.Done():
			rep.TimedOut = true
		}
		finish(&rep, &mu, doneAt, start, *out)
		return
	}
	if *canary && *phase == "all" {
		t := time.Now()
		if err := create("canary", -1); err != nil {
			log.Fatal(err)
		}
		select {
		case <-canaryDone:
		case <-ctx.Done():
			log.Fatal("the canary was never marked done")
		}
		rep.CanarySeconds = time.Since(t).Seconds()
	}

	mu.Lock()
	start = time.Now()
	started = true
	mu.Unlock()
	rep.StartUnixNs = start.UnixNano()
	var next int64 = -1
	var errs int64
	var wg sync.WaitGroup
	for k := 0; k < *workers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(atomic.AddInt64(&next, 1))
				if i >= *count {
					return
				}
				if err := create(fmt.Sprintf("w-%05d", i), i); err != nil {
					log.Print(err)
					atomic.AddInt64(&errs, 1)
				}
			}
		}()
	}
	wg.Wait()
	rep.CreateSeconds = time.Since(start).Seconds()
	rep.CreateErrors = errs
	if *phase == "create" {
		mu.Lock()
		doneAt = nil
		mu.Unlock()
		data, _ := json.Marshal(rep)
		writeOut(*out, data)
		if errs > 0 {
			os.Exit(1)
		}
		return
	}
	select {
	case <-allDone:
	case <-ctx.Done():
		rep.TimedOut = true
	}
	finish(&rep, &mu, doneAt, start, *out)
}

func finish(rep *report, mu *sync.Mutex, doneAt map[string]float64, start time.Time, out string) {
	rep.TotalSeconds = time.Since(start).Seconds()
	mu.Lock()
	for _, s := range doneAt {
		rep.DoneSeconds = append(rep.DoneSeconds, s)
	}
	mu.Unlock()
	sort.Float64s(rep.DoneSeconds)
	rep.Done = len(rep.DoneSeconds)
	if !rep.TimedOut && rep.Done > 0 {
		rep.TotalSeconds = rep.DoneSeconds[len(rep.DoneSeconds)-1]
	}
	data, _ := json.Marshal(rep)
	writeOut(out, data)
	if rep.TimedOut {
		os.Exit(3)
	}
}

func writeOut(out string, data []byte) {
	if out == "" {
		os.Stdout.Write(append(data, '\n'))
	} else if err := os.WriteFile(out, data, 0o644); err != nil {
		log.Fatal(err)
	}
}
