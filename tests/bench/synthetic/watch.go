package main

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// watcher is one open watch: events are appended to its buffer by whoever
// produces them, and its connection's goroutine writes whatever has
// accumulated in one write, then flushes.
type watcher struct {
	mu        sync.Mutex
	drained   *sync.Cond
	buf       []byte
	spare     []byte
	lines     uint64
	ready     chan struct{}
	isGone    bool
	closed    bool
	bookmarks bool
	ns        string
	written   uint64
	bytes     uint64
}

func newWatcher(ns string, bookmarks bool) *watcher {
	w := &watcher{ready: make(chan struct{}, 1), bookmarks: bookmarks, ns: ns}
	w.drained = sync.NewCond(&w.mu)
	return w
}

func (w *watcher) notify() {
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

func (w *watcher) push(line []byte) {
	w.mu.Lock()
	if !w.closed {
		w.buf = append(w.buf, line...)
		w.lines++
	}
	w.mu.Unlock()
	w.notify()
}

// pushEvents appends one event per object (the objects are in w's namespace
// scope or the caller does not care).
func (w *watcher) pushEvents(typ string, objs []*object) {
	w.mu.Lock()
	if !w.closed {
		for _, o := range objs {
			if w.ns != "" && o.ns != w.ns {
				continue
			}
			w.buf = appendEvent(w.buf, typ, o)
			w.lines++
		}
	}
	w.mu.Unlock()
	w.notify()
}

func (w *watcher) gone() {
	w.mu.Lock()
	w.isGone = true
	w.mu.Unlock()
	w.notify()
}

// take returns what accumulated and how many lines it holds.
func (w *watcher) take() ([]byte, uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, n := w.buf, w.lines
	w.buf, w.spare, w.lines = w.spare[:0], nil, 0
	return b, n, w.isGone
}

// giveBack returns a written buffer for reuse and records what was written.
func (w *watcher) giveBack(b []byte, lines uint64, n int) {
	w.mu.Lock()
	w.written += lines
	w.bytes += uint64(n)
	if w.spare == nil && cap(b) <= 8<<20 {
		w.spare = b[:0]
	}
	w.drained.Broadcast()
	w.mu.Unlock()
}

// waitBelow blocks while more than limit bytes wait to be written.
func (w *watcher) waitBelow(limit int) {
	w.mu.Lock()
	for len(w.buf) > limit && !w.closed && !w.isGone {
		w.drained.Wait()
	}
	w.mu.Unlock()
}

func (w *watcher) close() {
	w.mu.Lock()
	w.closed = true
	w.buf = nil
	w.drained.Broadcast()
	w.mu.Unlock()
}

func (w *watcher) counts() (uint64, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written, w.bytes
}

const goneLine = `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version","reason":"Expired","code":410}}` + "\n"

// serveWatch streams events from resourceVersion rv until the timeout, the
// client leaving, or a 410.
func (s *Store) serveWatch(rw http.ResponseWriter, r *http.Request, ns string) {
	q := r.URL.Query()
	var from uint64
	if v := q.Get("resourceVersion"); v != "" && v != "0" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeStatus(rw, 400, "BadRequest", "bad resourceVersion "+v)
			return
		}
		from = n
	}
	timeout := 30 * time.Minute
	if v := q.Get("timeoutSeconds"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	w := newWatcher(ns, q.Get("allowWatchBookmarks") == "true" || q.Get("allowWatchBookmarks") == "1")
	flusher, _ := rw.(http.Flusher)
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(200)

	s.mu.Lock()
	s.c.Watches++
	if from == 0 {
		from = s.rv
	}
	if from < s.minRV {
		s.c.GoneSent++
		s.mu.Unlock()
		rw.Write([]byte(goneLine))
		if flusher != nil {
			flusher.Flush()
		}
		return
	}
	for _, line := range s.historyAfterLocked(from) {
		w.buf = append(w.buf, line...)
		w.lines++
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	if flusher != nil {
		flusher.Flush()
	}
	defer func() {
		w.close()
		s.mu.Lock()
		delete(s.watchers, w)
		ew, bw := w.counts()
		s.closedEvents += ew
		s.closedBytes += bw
		s.mu.Unlock()
	}()
	w.notify()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-w.ready:
		case <-deadline.C:
			return
		case <-r.Context().Done():
			return
		}
		b, n, gone := w.take()
		if len(b) > 0 {
			if _, err := rw.Write(b); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			w.giveBack(b, n, len(b))
		}
		if gone {
			rw.Write([]byte(goneLine))
			if flusher != nil {
				flusher.Flush()
			}
			return
		}
	}
}

// streamRun is one run of streamed MODIFIED events.
type streamRun struct {
	done    bool
	events  uint64
	seconds float64
	stop    chan struct{}
}

// StreamOptions: rate 0 is as fast as the watches take them.
type StreamOptions struct {
	Rate     float64
	Count    int
	Duration time.Duration
	Shard    int // -1: every object
	Batch    int
}

// Stream writes MODIFIED events round-robin over the objects (of one shard,
// or all) until Count events or Duration. Each event gets a new
// resourceVersion and the sent-ns annotation set to the time it is queued
// for writing. Streamed events are not kept for replay: a watch that
// resumes from before them gets 410 Gone, as from a compacted store.
func (s *Store) Stream(opt StreamOptions, run *streamRun) {
	s.mu.Lock()
	var objs []*object
	for _, o := range s.objs {
		if opt.Shard < 0 || o.shard == opt.Shard {
			objs = append(objs, o)
		}
	}
	s.mu.Unlock()
	finish := func(start time.Time, n uint64) {
		s.mu.Lock()
		run.events = n
		run.seconds = time.Since(start).Seconds()
		run.done = true
		line := s.bookmarkLineLocked()
		for w := range s.watchers {
			if w.bookmarks {
				w.push(line)
			}
		}
		s.mu.Unlock()
	}
	start := time.Now()
	if len(objs) == 0 {
		finish(start, 0)
		return
	}
	batch := opt.Batch
	if batch <= 0 {
		batch = 1
		if opt.Rate == 0 || opt.Rate > 20000 {
			batch = 32
		}
	}
	var end time.Time
	if opt.Duration > 0 {
		end = start.Add(opt.Duration)
	}
	var sent uint64
	next := 0
	picked := make([]*object, 0, batch)
	var ws []*watcher
	for {
		if opt.Count > 0 && int(sent) >= opt.Count {
			break
		}
		select {
		case <-run.stop:
			finish(start, sent)
			return
		default:
		}
		nowT := time.Now()
		if !end.IsZero() && nowT.After(end) {
			break
		}
		n := batch
		if opt.Count > 0 && opt.Count-int(sent) < n {
			n = opt.Count - int(sent)
		}
		if n > len(objs) {
			n = len(objs) // Each event in a batch is a different object.
		}
		if opt.Rate > 0 {
			due := start.Add(time.Duration(float64(sent) / opt.Rate * float64(time.Second)))
			if d := due.Sub(nowT); d > 0 {
				time.Sleep(d)
			}
		}
		// Never more than 1 MB waiting for any watch: the reader sets the pace.
		for _, w := range ws {
			w.waitBelow(1 << 20)
		}
		s.mu.Lock()
		picked = picked[:0]
		t := now()
		for i := 0; i < n; i++ {
			o := objs[next]
			next = (next + 1) % len(objs)
			o.rv = s.nextRVLocked()
			o.sentNs = t
			picked = append(picked, o)
		}
		ws = ws[:0]
		for w := range s.watchers {
			w.pushEvents("MODIFIED", picked)
			ws = append(ws, w)
		}
		s.c.EventsQueued += uint64(n)
		s.minRV = s.rv
		run.events = sent + uint64(n)
		s.mu.Unlock()
		sent += uint64(n)
	}
	finish(start, sent)
}
