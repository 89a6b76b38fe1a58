package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	group       = "bench.herald.dev"
	version     = "v1"
	plural      = "widgets"
	kind        = "Widget"
	sentNsKey   = "bench.herald.dev/sent-ns"
	rvHolder    = "\u0001RV\u0001"
	sentHolder  = "\u0001NS\u0001"
	historySize = 2048
)

// object is one stored Widget, kept only as its encoded JSON with two holes:
// metadata.resourceVersion and the sent-ns annotation. Writing an event is
// three copies and two integer formats; nothing is encoded per event.
type object struct {
	ns, name string
	shard    int
	rv       uint64
	sentNs   int64
	// enc split at the holes: enc[0] hole enc[1] hole enc[2]; rvFirst says
	// which hole comes first.
	enc     [3][]byte
	rvFirst bool
}

// encodeObject stores doc (a decoded Widget) into o.
func (o *object) encodeObject(doc map[string]any) error {
	meta, _ := doc["metadata"].(map[string]any)
	if meta == nil {
		return fmt.Errorf("object has no metadata")
	}
	meta["resourceVersion"] = rvHolder
	ann, _ := meta["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		meta["annotations"] = ann
	}
	ann[sentNsKey] = sentHolder
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	text := bytes.TrimRight(buf.Bytes(), "\n")
	// The encoder writes U+0001 as \u0001.
	rvTok := []byte(`\u0001RV\u0001`)
	nsTok := []byte(`\u0001NS\u0001`)
	a := bytes.Index(text, rvTok)
	b := bytes.Index(text, nsTok)
	if a < 0 || b < 0 {
		return fmt.Errorf("encoding lost a placeholder")
	}
	o.rvFirst = a < b
	first, second := a, b
	firstLen, secondLen := len(rvTok), len(nsTok)
	if !o.rvFirst {
		first, second = b, a
		firstLen, secondLen = len(nsTok), len(rvTok)
	}
	o.enc[0] = append([]byte(nil), text[:first]...)
	o.enc[1] = append([]byte(nil), text[first+firstLen:second]...)
	o.enc[2] = append([]byte(nil), text[second+secondLen:]...)
	return nil
}

// appendJSON appends the object's JSON with its current resourceVersion and
// sent-ns.
func (o *object) appendJSON(dst []byte) []byte {
	dst = append(dst, o.enc[0]...)
	if o.rvFirst {
		dst = strconv.AppendUint(dst, o.rv, 10)
	} else {
		dst = strconv.AppendInt(dst, o.sentNs, 10)
	}
	dst = append(dst, o.enc[1]...)
	if o.rvFirst {
		dst = strconv.AppendInt(dst, o.sentNs, 10)
	} else {
		dst = strconv.AppendUint(dst, o.rv, 10)
	}
	return append(dst, o.enc[2]...)
}

func (o *object) size() int { return len(o.enc[0]) + len(o.enc[1]) + len(o.enc[2]) + 30 }

// jsonLen is the exact length of appendJSON's output.
func (o *object) jsonLen() int {
	return len(o.enc[0]) + len(o.enc[1]) + len(o.enc[2]) +
		len(strconv.FormatUint(o.rv, 10)) + len(strconv.FormatInt(o.sentNs, 10))
}

// decode returns the object as a generic JSON document.
func (o *object) decode() (map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(o.appendJSON(nil), &doc); err != nil {
		return nil, err
	}
	return doc, nil
}

func appendEvent(dst []byte, typ string, o *object) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","object":`...)
	dst = o.appendJSON(dst)
	return append(dst, "}\n"...)
}

type historyEntry struct {
	rv   uint64
	line []byte
}

// Counters reported by /control/stats.
type Counters struct {
	Objects       int     `json:"objects"`
	ResourceVer   uint64  `json:"resource_version"`
	EventsQueued  uint64  `json:"events_queued"`
	EventsWritten uint64  `json:"events_written"`
	BytesWritten  uint64  `json:"bytes_written"`
	Patches       uint64  `json:"patches"`
	StatusPatches uint64  `json:"status_patches"`
	Creates       uint64  `json:"creates"`
	Lists         uint64  `json:"lists"`
	ListPages     uint64  `json:"list_pages"`
	Watches       uint64  `json:"watches"`
	ActiveWatches int     `json:"active_watches"`
	GoneSent      uint64  `json:"gone_sent"`
	Changed       uint64  `json:"changed"`
	StreamRunning bool    `json:"stream_running"`
	StreamEvents  uint64  `json:"stream_events"`
	StreamSeconds float64 `json:"stream_seconds"`
	StreamPerSec  float64 `json:"stream_per_second"`
	EventsPosted  uint64  `json:"events_posted"`
	JSONBytes     uint64  `json:"json_bytes"`
}

// Store holds the objects, the event history and the open watches.
type Store struct {
	mu       sync.Mutex
	objs     []*object
	byKey    map[string]*object
	rv       uint64
	history  []historyEntry // ring, historySize entries at most
	histHead int
	// Watches from a resourceVersion below this get 410 Gone.
	minRV    uint64
	watchers map[*watcher]struct{}
	c        Counters
	start    time.Time
	uidSeq   uint64
	stream   *streamRun
	// Counts of watches that have ended.
	closedEvents, closedBytes uint64
}

func NewStore() *Store {
	return &Store{byKey: map[string]*object{}, watchers: map[*watcher]struct{}{}, start: time.Now(), rv: 1000}
}

func key(ns, name string) string { return ns + "/" + name }

// emitLocked sends one event for o (already updated) to every watch.
func (s *Store) emitLocked(typ string, o *object) {
	line := appendEvent(make([]byte, 0, o.size()+48), typ, o)
	s.recordLocked(o.rv, line)
	for w := range s.watchers {
		w.push(line)
	}
	s.c.EventsQueued++
}

func (s *Store) recordLocked(rv uint64, line []byte) {
	e := historyEntry{rv, line}
	if len(s.history) < historySize {
		s.history = append(s.history, e)
		return
	}
	// What falls out of the ring can no longer be replayed.
	s.minRV = s.history[s.histHead].rv
	s.history[s.histHead] = e
	s.histHead = (s.histHead + 1) % historySize
}

// historyAfterLocked returns the recorded events with rv > from, in order.
func (s *Store) historyAfterLocked(from uint64) [][]byte {
	var out [][]byte
	n := len(s.history)
	for i := 0; i < n; i++ {
		e := s.history[(s.histHead+i)%n]
		if e.rv > from {
			out = append(out, e.line)
		}
	}
	return out
}

func (s *Store) nextRVLocked() uint64 {
	s.rv++
	return s.rv
}

func now() int64 { return time.Now().UnixNano() }

// Create adds n objects of about size bytes each, spread over shards label
// values, and returns how many objects there are now.
func (s *Store) Create(ns string, n, size, shards int) (int, error) {
	if shards < 1 {
		shards = 1
	}
	s.mu.Lock()
	first := len(s.objs)
	s.mu.Unlock()
	created := make([]*object, 0, n)
	for i := 0; i < n; i++ {
		idx := first + i
		o, err := newWidget(ns, idx, size, shards)
		if err != nil {
			return 0, err
		}
		created = append(created, o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range created {
		if _, dup := s.byKey[key(o.ns, o.name)]; dup {
			continue
		}
		o.rv = s.nextRVLocked()
		o.sentNs = now()
		s.objs = append(s.objs, o)
		s.byKey[key(o.ns, o.name)] = o
		s.c.Creates++
		if len(s.watchers) > 0 {
			s.emitLocked("ADDED", o)
		}
	}
	return len(s.objs), nil
}

var createdAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)

func newWidget(ns string, idx, size, shards int) (*object, error) {
	shard := idx % shards
	doc := func(payload string) map[string]any {
		return map[string]any{
			"apiVersion": group + "/" + version,
			"kind":       kind,
			"metadata": map[string]any{
				"name":              fmt.Sprintf("widget-%07d", idx),
				"namespace":         ns,
				"uid":               fmt.Sprintf("00000000-0000-4000-8000-%012d", idx),
				"generation":        1,
				"creationTimestamp": createdAt,
				"labels": map[string]any{
					"app":   "bench",
					"shard": strconv.Itoa(shard),
					"color": fmt.Sprintf("c%d", idx%7),
				},
				"annotations": map[string]any{},
			},
			"spec": map[string]any{
				"index":   idx,
				"owner":   fmt.Sprintf("team-%d", idx%13),
				"payload": payload,
			},
			"status": map[string]any{},
		}
	}
	o := &object{ns: ns, name: fmt.Sprintf("widget-%07d", idx), shard: shard}
	if err := o.encodeObject(doc("")); err != nil {
		return nil, err
	}
	// The holes take about 4 + 19 digits once filled.
	pad := size - (o.size() - 30 + 23)
	if pad < 0 {
		pad = 0
	}
	payload := make([]byte, pad)
	for i := range payload {
		payload[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i*7+idx)%36]
	}
	if err := o.encodeObject(doc(string(payload))); err != nil {
		return nil, err
	}
	return o, nil
}

// Patch applies a patch to one object (or its status) and echoes the result
// as MODIFIED. Returns the new object's JSON.
func (s *Store) Patch(ns, name, contentType string, body []byte, status bool) ([]byte, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.byKey[key(ns, name)]
	if o == nil {
		return nil, 404, fmt.Errorf("widgets.%s %q not found", group, name)
	}
	doc, err := o.decode()
	if err != nil {
		return nil, 500, err
	}
	var result any
	ct := strings.TrimSpace(strings.Split(contentType, ";")[0])
	switch ct {
	case "application/merge-patch+json", "application/json":
		var p any
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, 400, fmt.Errorf("patch is not JSON: %v", err)
		}
		pm, ok := p.(map[string]any)
		if !ok {
			return nil, 422, fmt.Errorf("merge patch is not an object")
		}
		if status {
			// The status subresource takes status only.
			pm = map[string]any{"status": pm["status"]}
			if pm["status"] == nil {
				pm = map[string]any{}
			}
		} else {
			delete(pm, "status")
		}
		result = MergePatch(doc, pm)
	case "application/json-patch+json":
		var ops []map[string]any
		if err := json.Unmarshal(body, &ops); err != nil {
			return nil, 400, fmt.Errorf("json patch: %v", err)
		}
		r, err := JSONPatch(doc, ops)
		if err != nil {
			return nil, 422, err
		}
		result = r
	default:
		return nil, 415, fmt.Errorf("unsupported patch type %q", ct)
	}
	rm, ok := result.(map[string]any)
	if !ok {
		return nil, 422, fmt.Errorf("patched object is not an object")
	}
	if m, ok := rm["metadata"].(map[string]any); ok {
		// Identity stays.
		m["name"], m["namespace"] = o.name, o.ns
	}
	n := &object{ns: o.ns, name: o.name, shard: o.shard}
	if err := n.encodeObject(rm); err != nil {
		return nil, 500, err
	}
	// As on a real API server, a patch changes what it says and the
	// resourceVersion, nothing else: sent-ns stays that of the last event
	// the source made.
	sent := o.sentNs
	*o = *n
	o.rv = s.nextRVLocked()
	o.sentNs = sent
	if status {
		s.c.StatusPatches++
	} else {
		s.c.Patches++
	}
	s.emitLocked("MODIFIED", o)
	return o.appendJSON(nil), 200, nil
}

// Get returns one object's JSON.
func (s *Store) Get(ns, name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.byKey[key(ns, name)]
	if o == nil {
		return nil
	}
	return o.appendJSON(nil)
}

// CreateFromBody adds an object posted to the collection.
func (s *Store) CreateFromBody(ns string, body []byte) ([]byte, int, error) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 400, err
	}
	meta, _ := doc["metadata"].(map[string]any)
	if meta == nil {
		return nil, 422, fmt.Errorf("no metadata")
	}
	name, _ := meta["name"].(string)
	if name == "" {
		return nil, 422, fmt.Errorf("no metadata.name")
	}
	meta["namespace"] = ns
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey[key(ns, name)] != nil {
		return nil, 409, fmt.Errorf("widgets.%s %q already exists", group, name)
	}
	s.uidSeq++
	meta["uid"] = fmt.Sprintf("00000000-0000-4000-9000-%012d", s.uidSeq)
	meta["creationTimestamp"] = time.Now().UTC().Format(time.RFC3339)
	meta["generation"] = 1
	o := &object{ns: ns, name: name}
	if err := o.encodeObject(doc); err != nil {
		return nil, 500, err
	}
	o.rv = s.nextRVLocked()
	o.sentNs = now()
	s.objs = append(s.objs, o)
	s.byKey[key(ns, name)] = o
	s.c.Creates++
	s.emitLocked("ADDED", o)
	return o.appendJSON(nil), 201, nil
}

// ListPage appends one page of the list from offset to dst. It returns the
// offset of the next page (0 when done) and the list's resourceVersion.
func (s *Store) ListPage(dst []byte, ns string, offset, limit int, listRV uint64) ([]byte, int, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if listRV == 0 {
		listRV = s.rv
	}
	s.c.ListPages++
	n := 0
	dst = append(dst, `{"apiVersion":"`+group+`/`+version+`","kind":"`+kind+`List","items":[`...)
	i := offset
	for ; i < len(s.objs) && (limit <= 0 || n < limit); i++ {
		o := s.objs[i]
		if ns != "" && o.ns != ns {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = o.appendJSON(dst)
		n++
	}
	next := 0
	if i < len(s.objs) {
		next = i
	}
	dst = append(dst, `],"metadata":{"resourceVersion":"`...)
	dst = strconv.AppendUint(dst, listRV, 10)
	dst = append(dst, '"')
	if next > 0 {
		dst = append(dst, `,"continue":"`...)
		dst = strconv.AppendInt(dst, int64(next), 10)
		dst = append(dst, '.')
		dst = strconv.AppendUint(dst, listRV, 10)
		dst = append(dst, '"')
	}
	dst = append(dst, "}}"...)
	return dst, next, listRV
}

// Gone changes pct percent of the objects (spread evenly, without watch
// events), forgets the event history and ends every open watch with a 410
// ERROR event, so that watchers relist and find exactly those changes.
func (s *Store) Gone(pct float64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := uint64(0)
	if pct > 0 && len(s.objs) > 0 {
		want := int(float64(len(s.objs))*pct/100 + 0.5)
		if want < 1 {
			want = 1
		}
		step := float64(len(s.objs)) / float64(want)
		for k := 0; k < want; k++ {
			o := s.objs[int(float64(k)*step)]
			doc, err := o.decode()
			if err != nil {
				continue
			}
			spec, _ := doc["spec"].(map[string]any)
			if spec == nil {
				spec = map[string]any{}
				doc["spec"] = spec
			}
			spec["changes"] = s.c.Changed + 1
			n := &object{ns: o.ns, name: o.name, shard: o.shard}
			if err := n.encodeObject(doc); err != nil {
				continue
			}
			*o = *n
			o.rv = s.nextRVLocked()
			o.sentNs = now()
			changed++
			s.c.Changed++
		}
	}
	s.history = s.history[:0]
	s.histHead = 0
	s.minRV = s.rv
	for w := range s.watchers {
		w.gone()
		delete(s.watchers, w)
		s.c.GoneSent++
	}
	return changed
}

// Bookmark sends a BOOKMARK with the current resourceVersion to every watch
// that asked for bookmarks.
func (s *Store) Bookmark() {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := s.bookmarkLineLocked()
	for w := range s.watchers {
		if w.bookmarks {
			w.push(line)
		}
	}
}

func (s *Store) bookmarkLineLocked() []byte {
	return []byte(fmt.Sprintf(`{"type":"BOOKMARK","object":{"apiVersion":"%s/%s","kind":"%s","metadata":{"resourceVersion":"%d"}}}`+"\n",
		group, version, kind, s.rv))
}

func (s *Store) Stats() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	c.Objects = len(s.objs)
	c.ResourceVer = s.rv
	c.ActiveWatches = len(s.watchers)
	for _, o := range s.objs {
		c.JSONBytes += uint64(o.jsonLen())
	}
	for w := range s.watchers {
		ew, bw := w.counts()
		c.EventsWritten += ew
		c.BytesWritten += bw
	}
	c.EventsWritten += s.closedEvents
	c.BytesWritten += s.closedBytes
	if s.stream != nil {
		c.StreamRunning = !s.stream.done
		c.StreamEvents = s.stream.events
		c.StreamSeconds = s.stream.seconds
		if s.stream.seconds > 0 {
			c.StreamPerSec = float64(s.stream.events) / s.stream.seconds
		}
	}
	return c
}
