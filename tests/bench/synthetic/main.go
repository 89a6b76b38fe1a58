// herald-synthetic: a stand-in Kubernetes API server for Herald's
// benchmarks. It serves one custom resource, widgets.bench.herald.dev/v1
// (namespaced, kind Widget, with a status subresource): discovery, paged
// lists, watches with bookmarks, merge and JSON patches (echoed to watches as
// MODIFIED), and controls under /control/ to create objects, stream events,
// force a relist with 410 Gone and read counters. See README.md.
//
//	herald-synthetic serve [--port=0] [--port-file=PATH]
//	herald-synthetic read --server=http://127.0.0.1:PORT --count=N
//	herald-synthetic list --server=http://127.0.0.1:PORT [--limit=500]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	json.NewEncoder(rw).Encode(v)
}

func writeStatus(rw http.ResponseWriter, code int, reason, message string) {
	writeJSON(rw, code, map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": message, "reason": reason, "code": code,
	})
}

func writeRaw(rw http.ResponseWriter, code int, body []byte) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.WriteHeader(code)
	rw.Write(body)
}

func (s *Store) routes() *http.ServeMux {
	mux := http.NewServeMux()
	gv := group + "/" + version
	mux.HandleFunc("GET /version", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, 200, map[string]any{"major": "1", "minor": "34", "gitVersion": "v1.34.0-synthetic"})
	})
	mux.HandleFunc("GET /api", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, 200, map[string]any{"kind": "APIVersions", "versions": []string{"v1"}})
	})
	mux.HandleFunc("GET /api/v1", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, 200, map[string]any{
			"kind": "APIResourceList", "groupVersion": "v1",
			"resources": []any{
				map[string]any{"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": []string{"get", "list", "watch"}},
				map[string]any{"name": "events", "singularName": "event", "namespaced": true, "kind": "Event", "verbs": []string{"create"}},
			},
		})
	})
	mux.HandleFunc("GET /apis", func(rw http.ResponseWriter, r *http.Request) {
		gvd := map[string]any{"groupVersion": gv, "version": version}
		writeJSON(rw, 200, map[string]any{
			"kind": "APIGroupList", "apiVersion": "v1",
			"groups": []any{map[string]any{"name": group, "versions": []any{gvd}, "preferredVersion": gvd}},
		})
	})
	mux.HandleFunc("GET /apis/"+gv, func(rw http.ResponseWriter, r *http.Request) {
		verbs := []string{"get", "list", "watch", "create", "patch", "update", "delete"}
		writeJSON(rw, 200, map[string]any{
			"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
			"resources": []any{
				map[string]any{"name": plural, "singularName": "widget", "namespaced": true, "kind": kind, "verbs": verbs, "shortNames": []string{"wg"}},
				map[string]any{"name": plural + "/status", "singularName": "", "namespaced": true, "kind": kind, "verbs": []string{"get", "patch", "update"}},
			},
		})
	})
	collection := func(rw http.ResponseWriter, r *http.Request, ns string) {
		q := r.URL.Query()
		if w := q.Get("watch"); w == "1" || w == "true" {
			s.serveWatch(rw, r, ns)
			return
		}
		s.serveList(rw, r, ns)
	}
	mux.HandleFunc("GET /apis/"+gv+"/"+plural, func(rw http.ResponseWriter, r *http.Request) {
		collection(rw, r, "")
	})
	mux.HandleFunc("GET /apis/"+gv+"/namespaces/{ns}/"+plural, func(rw http.ResponseWriter, r *http.Request) {
		collection(rw, r, r.PathValue("ns"))
	})
	mux.HandleFunc("POST /apis/"+gv+"/namespaces/{ns}/"+plural, func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		out, code, err := s.CreateFromBody(r.PathValue("ns"), body)
		if err != nil {
			writeStatus(rw, code, http.StatusText(code), err.Error())
			return
		}
		writeRaw(rw, code, out)
	})
	get := func(rw http.ResponseWriter, r *http.Request) {
		out := s.Get(r.PathValue("ns"), r.PathValue("name"))
		if out == nil {
			writeStatus(rw, 404, "NotFound", "widgets."+group+" \""+r.PathValue("name")+"\" not found")
			return
		}
		writeRaw(rw, 200, out)
	}
	mux.HandleFunc("GET /apis/"+gv+"/namespaces/{ns}/"+plural+"/{name}", get)
	mux.HandleFunc("GET /apis/"+gv+"/namespaces/{ns}/"+plural+"/{name}/status", get)
	patch := func(status bool) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			out, code, err := s.Patch(r.PathValue("ns"), r.PathValue("name"), r.Header.Get("Content-Type"), body, status)
			if err != nil {
				writeStatus(rw, code, http.StatusText(code), err.Error())
				return
			}
			writeRaw(rw, 200, out)
		}
	}
	mux.HandleFunc("PATCH /apis/"+gv+"/namespaces/{ns}/"+plural+"/{name}", patch(false))
	mux.HandleFunc("PATCH /apis/"+gv+"/namespaces/{ns}/"+plural+"/{name}/status", patch(true))
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/events", func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.c.EventsPosted++
		s.mu.Unlock()
		writeRaw(rw, 201, body)
	})

	// Controls.
	mux.HandleFunc("POST /control/create", func(rw http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("n"))
		size := atoiOr(q.Get("size"), 2048)
		shards := atoiOr(q.Get("shards"), 1)
		ns := q.Get("namespace")
		if ns == "" {
			ns = "bench"
		}
		total, err := s.Create(ns, n, size, shards)
		if err != nil {
			writeStatus(rw, 500, "InternalError", err.Error())
			return
		}
		writeJSON(rw, 200, map[string]any{"objects": total})
	})
	mux.HandleFunc("POST /control/stream", func(rw http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rate, _ := strconv.ParseFloat(q.Get("rate"), 64)
		dur, _ := strconv.ParseFloat(q.Get("seconds"), 64)
		opt := StreamOptions{
			Rate: rate, Count: atoiOr(q.Get("count"), 0),
			Duration: time.Duration(dur * float64(time.Second)),
			Shard:    atoiOr(q.Get("shard"), -1), Batch: atoiOr(q.Get("batch"), 0),
		}
		if opt.Count == 0 && opt.Duration == 0 {
			writeStatus(rw, 400, "BadRequest", "give count or seconds")
			return
		}
		run := &streamRun{stop: make(chan struct{})}
		s.mu.Lock()
		if s.stream != nil && !s.stream.done {
			s.mu.Unlock()
			writeStatus(rw, 409, "Conflict", "a stream is running; POST /control/stop first")
			return
		}
		s.stream = run
		s.mu.Unlock()
		if q.Get("wait") == "1" {
			s.Stream(opt, run)
			writeJSON(rw, 200, s.Stats())
			return
		}
		go s.Stream(opt, run)
		writeJSON(rw, 200, map[string]any{"started": true})
	})
	mux.HandleFunc("POST /control/stop", func(rw http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.stream != nil && !s.stream.done {
			select {
			case <-s.stream.stop:
			default:
				close(s.stream.stop)
			}
		}
		s.mu.Unlock()
		writeJSON(rw, 200, map[string]any{"stopped": true})
	})
	mux.HandleFunc("POST /control/gone", func(rw http.ResponseWriter, r *http.Request) {
		pct, _ := strconv.ParseFloat(r.URL.Query().Get("change_pct"), 64)
		changed := s.Gone(pct)
		writeJSON(rw, 200, map[string]any{"changed": changed})
	})
	mux.HandleFunc("POST /control/bookmark", func(rw http.ResponseWriter, r *http.Request) {
		s.Bookmark()
		writeJSON(rw, 200, map[string]any{"sent": true})
	})
	mux.HandleFunc("GET /control/stats", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, 200, s.Stats())
	})
	return mux
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// serveList answers a list, paged by limit and continue ("offset.rv"), one
// page rendered at a time.
func (s *Store) serveList(rw http.ResponseWriter, r *http.Request, ns string) {
	q := r.URL.Query()
	limit := atoiOr(q.Get("limit"), 0)
	offset := 0
	var listRV uint64
	if c := q.Get("continue"); c != "" {
		parts := strings.SplitN(c, ".", 2)
		o, err1 := strconv.Atoi(parts[0])
		var err2 error
		if len(parts) == 2 {
			listRV, err2 = strconv.ParseUint(parts[1], 10, 64)
		}
		if err1 != nil || err2 != nil || len(parts) != 2 {
			writeStatus(rw, 400, "BadRequest", "bad continue token")
			return
		}
		offset = o
	} else {
		s.mu.Lock()
		s.c.Lists++
		s.mu.Unlock()
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(200)
	if limit > 0 {
		buf, _, _ := s.ListPage(make([]byte, 0, limit*2600+256), ns, offset, limit, listRV)
		rw.Write(buf)
		return
	}
	// Unpaged: written a slice at a time, never whole.
	const slice = 500
	s.mu.Lock()
	rv := s.rv
	total := len(s.objs)
	s.mu.Unlock()
	bw := bufio.NewWriterSize(rw, 256<<10)
	bw.WriteString(`{"apiVersion":"` + group + `/` + version + `","kind":"` + kind + `List","items":[`)
	first := true
	var buf []byte
	for off := 0; off < total; off += slice {
		buf = buf[:0]
		s.mu.Lock()
		for i := off; i < off+slice && i < len(s.objs); i++ {
			o := s.objs[i]
			if ns != "" && o.ns != ns {
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = o.appendJSON(buf)
		}
		s.mu.Unlock()
		bw.Write(buf)
	}
	fmt.Fprintf(bw, `],"metadata":{"resourceVersion":"%d"}}`, rv)
	bw.Flush()
}

// watchParent exits when the parent process goes away.
func watchParent() {
	ppid := os.Getppid()
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != ppid {
			os.Exit(0)
		}
	}
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1", "address to listen on (loopback)")
	port := fs.Int("port", 0, "port; 0 picks a free one")
	portFile := fs.String("port-file", "", "write the port here once listening")
	bookmarks := fs.Duration("bookmark-interval", 5*time.Second, "how often open watches get a BOOKMARK; 0 for never")
	create := fs.Int("objects", 0, "objects to create at start")
	size := fs.Int("size", 2048, "approximate JSON bytes of each object created at start")
	shards := fs.Int("shards", 1, "shard label values of objects created at start")
	fs.Parse(args)
	go watchParent()
	s := NewStore()
	if *create > 0 {
		if _, err := s.Create("bench", *create, *size, *shards); err != nil {
			log.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*addr, strconv.Itoa(*port)))
	if err != nil {
		log.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	fmt.Printf("listening on http://%s:%d\n", *addr, p)
	if *portFile != "" {
		tmp := *portFile + ".tmp"
		os.WriteFile(tmp, []byte(strconv.Itoa(p)+"\n"), 0o644)
		os.Rename(tmp, *portFile)
	}
	if *bookmarks > 0 {
		go func() {
			for range time.Tick(*bookmarks) {
				s.Bookmark()
			}
		}()
	}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// read measures the source alone: it opens a watch, asks for count events as
// fast as possible and reads them, splitting lines and checking each is a
// MODIFIED event, as the sidecar's first step does.
func read(args []string) {
	fs := flag.NewFlagSet("read", flag.ExitOnError)
	server := fs.String("server", "", "the synthetic server's URL")
	count := fs.Int("count", 100000, "events to read")
	rate := fs.Float64("rate", 0, "events per second to ask for; 0 for as fast as possible")
	fs.Parse(args)
	base := strings.TrimRight(*server, "/")
	resp, err := http.Get(base + "/apis/" + group + "/" + version + "/" + plural + "?limit=1")
	if err != nil {
		log.Fatal(err)
	}
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	wresp, err := http.Get(base + "/apis/" + group + "/" + version + "/" + plural +
		"?watch=1&allowWatchBookmarks=true&resourceVersion=" + list.Metadata.ResourceVersion)
	if err != nil {
		log.Fatal(err)
	}
	defer wresp.Body.Close()
	start := time.Now()
	sresp, err := http.Post(base+"/control/stream?count="+strconv.Itoa(*count)+
		"&rate="+strconv.FormatFloat(*rate, 'f', -1, 64), "application/json", nil)
	if err != nil {
		log.Fatal(err)
	}
	sresp.Body.Close()
	br := bufio.NewReaderSize(wresp.Body, 1<<20)
	n, nbytes := 0, 0
	prefix := []byte(`{"type":"MODIFIED"`)
	sentKey := []byte(`"` + sentNsKey + `":"`)
	// Time from the source writing an event to this reader having its line.
	var lat []int64
	for n < *count {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			log.Fatal("line longer than 1 MB")
		}
		if err != nil {
			log.Fatal(err)
		}
		nbytes += len(line)
		if bytes.HasPrefix(line, prefix) {
			n++
			if i := bytes.Index(line, sentKey); i >= 0 {
				rest := line[i+len(sentKey):]
				if j := bytes.IndexByte(rest, '"'); j > 0 {
					if sent, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
						lat = append(lat, time.Now().UnixNano()-sent)
					}
				}
			}
		}
	}
	secs := time.Since(start).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p/100*float64(len(lat)-1))]) / 1e3
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"events": n, "bytes": nbytes, "seconds": secs, "per_second": float64(n) / secs,
		"mb_per_second":  float64(nbytes) / secs / 1e6,
		"latency_us_p50": pct(50), "latency_us_p99": pct(99),
	})
}

// list measures a bare client paging through the list: it reads each page's
// bytes and takes the continue token from the envelope, parsing nothing else.
func list(args []string) {
	fs := flag.NewFlagSet("list", flag.ExitOnError)
	server := fs.String("server", "", "the synthetic server's URL")
	limit := fs.Int("limit", 500, "page size")
	fs.Parse(args)
	base := strings.TrimRight(*server, "/") + "/apis/" + group + "/" + version + "/" + plural +
		"?limit=" + strconv.Itoa(*limit)
	start := time.Now()
	pages, nbytes := 0, 0
	cont := ""
	for {
		url := base
		if cont != "" {
			url += "&continue=" + cont
		}
		resp, err := http.Get(url)
		if err != nil {
			log.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			log.Fatalf("page %d: %v %d", pages, err, resp.StatusCode)
		}
		pages++
		nbytes += len(body)
		tail := body[max(0, len(body)-200):]
		i := bytes.LastIndex(tail, []byte(`"continue":"`))
		if i < 0 {
			break
		}
		rest := tail[i+len(`"continue":"`):]
		cont = string(rest[:bytes.IndexByte(rest, '"')])
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"pages": pages, "bytes": nbytes, "seconds": time.Since(start).Seconds(),
	})
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("herald-synthetic: ")
	if len(os.Args) > 1 && os.Args[1] == "read" {
		read(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "list" {
		list(os.Args[2:])
		return
	}
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	serve(args)
}
