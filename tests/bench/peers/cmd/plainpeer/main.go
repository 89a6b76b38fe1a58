// plainpeer: the floor for P1. It lists and watches Widgets in one namespace
// and sends each new one the same merge PATCH Herald sends for a finished
// create handler (the diff-base annotation and the status field), with a fixed
// number of concurrent writers. Nothing else: no cache, no queue semantics, no
// progress storage.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"herald.dev/tests/bench/peers/internal/kube"
)

func main() {
	namespace := flag.String("namespace", "default", "namespace to watch")
	workers := flag.Int("workers", 4, "concurrent PATCH requests")
	prefix := flag.String("annotation_prefix", "herald.dev", "prefix of the diff-base annotation")
	status := flag.String("status_patch_json", `{"bench":{"done":true}}`, "merged into .status")
	flag.Parse()

	c, err := kube.New("")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	collection := kube.WidgetsPath(*namespace)
	type job struct {
		name string
		spec json.RawMessage
	}
	jobs := make(chan job, 1<<20)
	var mu sync.Mutex
	seen := map[string]bool{}

	patched := 0
	for i := 0; i < *workers; i++ {
		go func() {
			for j := range jobs {
				var spec bytes.Buffer
				if len(j.spec) > 0 {
					_ = json.Compact(&spec, j.spec)
				} else {
					spec.WriteString("{}")
				}
				essence := `{"spec":` + spec.String() + "}\n"
				patch, _ := json.Marshal(map[string]any{
					"metadata": map[string]any{"annotations": map[string]string{
						*prefix + "/last-handled-configuration": essence}},
					"status": json.RawMessage(*status),
				})
				for attempt := 0; ; attempt++ {
					code, body, err := c.Do(ctx, "PATCH", collection+"/"+j.name,
						"application/merge-patch+json", patch)
					if err == nil && code == 200 {
						break
					}
					if ctx.Err() != nil || code == 404 {
						break
					}
					log.Printf("patch %s: %d %v %s", j.name, code, err, body)
					time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
				}
				mu.Lock()
				patched++
				mu.Unlock()
			}
		}()
	}

	err = c.ListWatch(ctx, collection, func() { fmt.Fprintln(os.Stderr, "plainpeer: listed, watching") },
		func(_ string, w *kube.Widget) {
			if w.Status.Bench.Done {
				return
			}
			mu.Lock()
			dup := seen[w.Metadata.Name]
			seen[w.Metadata.Name] = true
			mu.Unlock()
			if !dup {
				jobs <- job{w.Metadata.Name, w.Spec}
			}
		})
	if err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
	mu.Lock()
	fmt.Fprintf(os.Stderr, "plainpeer: %d patched\n", patched)
	mu.Unlock()
}
