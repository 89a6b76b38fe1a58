// Package kube holds what the plain peer and the P1 driver share: an HTTP
// client for the API server built by client-go from the kubeconfig, raw
// requests, and a list-then-watch loop that decodes only the fields they read.
package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Client talks to one API server with the credentials of a kubeconfig.
type Client struct {
	Host string
	HTTP *http.Client
}

// New loads $KUBECONFIG (or the given path) and builds the transport.
func New(kubeconfig string) (*Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, err
	}
	return FromConfig(cfg)
}

// FromConfig builds the transport of a rest.Config.
func FromConfig(cfg *rest.Config) (*Client, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{Host: cfg.Host, HTTP: hc}, nil
}

// Do sends one request and returns the status and body.
func (c *Client) Do(ctx context.Context, method, path, contentType string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Host+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// Widget is what the peers read of a Widget.
type Widget struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Spec   json.RawMessage `json:"spec"`
	Status struct {
		Bench struct {
			Done bool `json:"done"`
		} `json:"bench"`
	} `json:"status"`
}

type list struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []Widget `json:"items"`
}

type event struct {
	Type   string `json:"type"`
	Object Widget `json:"object"`
}

// ListWatch lists the collection, calls fn for every item (listing=true),
// then watches from the list's resourceVersion and calls fn for every ADDED
// or MODIFIED event, reconnecting from the last seen version, until ctx ends.
// ready is called once, after the listing.
func (c *Client) ListWatch(ctx context.Context, collection string, ready func(), fn func(typ string, w *Widget)) error {
	var code int
	var data []byte
	var err error
	// 429 and 5xx (a watch cache still initializing, a server busy) are retried.
	for attempt := 0; ; attempt++ {
		code, data, err = c.Do(ctx, "GET", collection, "", nil)
		if err == nil && code == 200 {
			break
		}
		if ctx.Err() != nil || attempt >= 50 || (err == nil && code != 429 && code < 500) {
			return fmt.Errorf("list %s: HTTP %d: %v %s", collection, code, err, data)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var l list
	if err := json.Unmarshal(data, &l); err != nil {
		return err
	}
	for i := range l.Items {
		fn("LISTED", &l.Items[i])
	}
	if ready != nil {
		ready()
	}
	rv := l.Metadata.ResourceVersion
	for ctx.Err() == nil {
		q := url.Values{"watch": {"1"}, "resourceVersion": {rv}, "allowWatchBookmarks": {"true"},
			"timeoutSeconds": {"3600"}}
		req, err := http.NewRequestWithContext(ctx, "GET", c.Host+collection+"?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := c.HTTP.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return fmt.Errorf("watch %s: HTTP %d: %s", collection, resp.StatusCode, b)
		}
		dec := json.NewDecoder(resp.Body)
		for {
			var e event
			if err := dec.Decode(&e); err != nil {
				break
			}
			if e.Type == "ERROR" {
				resp.Body.Close()
				return fmt.Errorf("watch %s: ERROR event", collection)
			}
			if e.Object.Metadata.ResourceVersion != "" {
				rv = e.Object.Metadata.ResourceVersion
			}
			if e.Type == "ADDED" || e.Type == "MODIFIED" {
				fn(e.Type, &e.Object)
			}
		}
		resp.Body.Close()
	}
	return nil
}

// WidgetsPath is the collection of Widgets in a namespace.
func WidgetsPath(namespace string) string {
	return "/apis/bench.herald.dev/v1/namespaces/" + namespace + "/widgets"
}
