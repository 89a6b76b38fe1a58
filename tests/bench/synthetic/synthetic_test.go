package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMergePatch(t *testing.T) {
	var target, patch, want any
	json.Unmarshal([]byte(`{"a":"b","c":{"d":"e","f":"g"},"keep":[1,2]}`), &target)
	json.Unmarshal([]byte(`{"a":"z","c":{"f":null,"h":1},"n":{"x":null,"y":2}}`), &patch)
	json.Unmarshal([]byte(`{"a":"z","c":{"d":"e","h":1},"keep":[1,2],"n":{"y":2}}`), &want)
	got := MergePatch(target, patch)
	if !jsonEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	// The target is untouched.
	if target.(map[string]any)["a"] != "b" {
		t.Fatalf("target modified: %v", target)
	}
	// RFC 7386: a non-object patch replaces.
	if !jsonEqual(MergePatch(target, []any{1.0}), []any{1.0}) {
		t.Fatal("array patch did not replace")
	}
}

func TestJSONPatch(t *testing.T) {
	var doc any
	json.Unmarshal([]byte(`{"metadata":{"finalizers":["a"]}}`), &doc)
	var ops []map[string]any
	json.Unmarshal([]byte(`[{"op":"test","path":"/metadata/finalizers","value":["a"]},
		{"op":"add","path":"/metadata/finalizers/-","value":"b"},
		{"op":"remove","path":"/metadata/finalizers/0"}]`), &ops)
	got, err := JSONPatch(doc, ops)
	if err != nil {
		t.Fatal(err)
	}
	var want any
	json.Unmarshal([]byte(`{"metadata":{"finalizers":["b"]}}`), &want)
	if !jsonEqual(got, want) {
		t.Fatalf("got %v", got)
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b
}

func TestListPaging(t *testing.T) {
	s := NewStore()
	if _, err := s.Create("bench", 1234, 2500, 3); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.routes())
	defer srv.Close()
	base := srv.URL + "/apis/bench.herald.dev/v1/widgets"
	seen := map[string]bool{}
	cont, rv, pages := "", "", 0
	for {
		url := base + "?limit=500"
		if cont != "" {
			url += "&continue=" + cont
		}
		var list struct {
			Items []struct {
				Metadata struct {
					Name, ResourceVersion string
					Annotations           map[string]string
					Labels                map[string]string
				}
			}
			Metadata struct{ ResourceVersion, Continue string }
		}
		body := get(t, url)
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		if pages == 1 {
			rv = list.Metadata.ResourceVersion
			if size := len(body) / len(list.Items); size < 2300 || size > 2700 {
				t.Fatalf("objects of about %d bytes, want about 2500", size)
			}
		} else if list.Metadata.ResourceVersion != rv {
			t.Fatalf("page %d at rv %s, first at %s", pages, list.Metadata.ResourceVersion, rv)
		}
		for _, it := range list.Items {
			if seen[it.Metadata.Name] {
				t.Fatalf("%s listed twice", it.Metadata.Name)
			}
			seen[it.Metadata.Name] = true
			if it.Metadata.Annotations[sentNsKey] == "" || it.Metadata.ResourceVersion == "" {
				t.Fatalf("%s lacks rv or sent-ns", it.Metadata.Name)
			}
		}
		if len(list.Items) > 500 {
			t.Fatalf("page of %d items", len(list.Items))
		}
		cont = list.Metadata.Continue
		if cont == "" {
			break
		}
	}
	if pages != 3 || len(seen) != 1234 {
		t.Fatalf("%d pages, %d objects", pages, len(seen))
	}
	// Unpaged.
	var all struct{ Items []any }
	json.Unmarshal(get(t, base), &all)
	if len(all.Items) != 1234 {
		t.Fatalf("unpaged list of %d", len(all.Items))
	}
}

func TestPatchIsEchoedToWatches(t *testing.T) {
	s := NewStore()
	s.Create("bench", 3, 2048, 1)
	srv := httptest.NewServer(s.routes())
	defer srv.Close()
	base := srv.URL + "/apis/bench.herald.dev/v1"
	var before map[string]any
	json.Unmarshal(s.Get("bench", "widget-0000001"), &before)
	sentBefore := before["metadata"].(map[string]any)["annotations"].(map[string]any)[sentNsKey]
	rv := s.Stats().ResourceVer
	resp, err := http.Get(base + "/widgets?watch=1&allowWatchBookmarks=true&resourceVersion=" + itoa(rv))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, sub := range []string{"", "/status"} {
		req, _ := http.NewRequest("PATCH", base+"/namespaces/bench/widgets/widget-0000001"+sub,
			strings.NewReader(`{"spec":{"owner":null,"new":1},"status":{"done":true}}`))
		req.Header.Set("Content-Type", "application/merge-patch+json")
		pr, err := http.DefaultClient.Do(req)
		if err != nil || pr.StatusCode != 200 {
			t.Fatalf("patch%s: %v %v", sub, err, pr.Status)
		}
		pr.Body.Close()
	}
	br := bufio.NewReader(resp.Body)
	var last map[string]any
	for i := 0; i < 2; i++ {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Type   string
			Object map[string]any
		}
		json.Unmarshal(line, &ev)
		if ev.Type != "MODIFIED" {
			t.Fatalf("event %d is %s", i, ev.Type)
		}
		last = ev.Object
	}
	// A patch changes what it says and the resourceVersion only.
	if got := last["metadata"].(map[string]any)["annotations"].(map[string]any)[sentNsKey]; got != sentBefore {
		t.Fatalf("sent-ns %v after the patches, %v before", got, sentBefore)
	}
	spec := last["spec"].(map[string]any)
	if _, ok := spec["owner"]; ok || spec["new"] != 1.0 {
		t.Fatalf("spec not merged: %v", spec)
	}
	if last["status"].(map[string]any)["done"] != true {
		t.Fatalf("status not patched: %v", last["status"])
	}
	if got := s.Stats(); got.Patches != 1 || got.StatusPatches != 1 {
		t.Fatalf("counters %+v", got)
	}
}

func TestGoneRelistsWithChanges(t *testing.T) {
	s := NewStore()
	s.Create("bench", 1000, 1024, 1)
	before := map[string]uint64{}
	for _, o := range s.objs {
		before[o.name] = o.rv
	}
	oldRV := s.Stats().ResourceVer
	if n := s.Gone(1); n != 10 {
		t.Fatalf("changed %d, want 10", n)
	}
	changed := 0
	for _, o := range s.objs {
		if o.rv != before[o.name] {
			changed++
		}
	}
	if changed != 10 {
		t.Fatalf("%d objects have a new rv", changed)
	}
	srv := httptest.NewServer(s.routes())
	defer srv.Close()
	body := get(t, srv.URL+"/apis/bench.herald.dev/v1/widgets?watch=1&resourceVersion="+itoa(oldRV))
	if !strings.Contains(string(body), `"code":410`) {
		t.Fatalf("old watch got %s", body)
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }
