package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MergePatch applies an RFC 7386 JSON merge patch to target and returns the
// result. target is not modified when patch is an object (a copy is made of
// every object on the patched path).
func MergePatch(target any, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	out := make(map[string]any, len(t)+len(p))
	if ok {
		for k, v := range t {
			out[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = MergePatch(out[k], v)
	}
	return out
}

// JSONPatch applies an RFC 6902 JSON patch (add, remove, replace, test) to a
// deep copy of target.
func JSONPatch(target any, ops []map[string]any) (any, error) {
	doc := deepCopy(target)
	for _, op := range ops {
		kind, _ := op["op"].(string)
		path, _ := op["path"].(string)
		parts, err := splitPointer(path)
		if err != nil {
			return nil, err
		}
		switch kind {
		case "add", "replace":
			doc, err = setAt(doc, parts, deepCopy(op["value"]), kind == "add")
		case "remove":
			doc, err = removeAt(doc, parts)
		case "test":
			var got any
			got, err = getAt(doc, parts)
			if err == nil && !jsonEqual(got, op["value"]) {
				err = fmt.Errorf("test failed at %s", path)
			}
		default:
			err = fmt.Errorf("unsupported op %q", kind)
		}
		if err != nil {
			return nil, err
		}
	}
	return doc, nil
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = deepCopy(x)
		}
		return out
	default:
		return v
	}
}

func splitPointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("bad JSON pointer %q", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

func getAt(doc any, parts []string) (any, error) {
	cur := doc
	for _, k := range parts {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[k]
			if !ok {
				return nil, fmt.Errorf("no member %q", k)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("bad index %q", k)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("cannot descend into %q", k)
		}
	}
	return cur, nil
}

func setAt(doc any, parts []string, value any, insert bool) (any, error) {
	if len(parts) == 0 {
		return value, nil
	}
	parent, err := getAt(doc, parts[:len(parts)-1])
	if err != nil {
		return nil, err
	}
	last := parts[len(parts)-1]
	switch c := parent.(type) {
	case map[string]any:
		if !insert {
			if _, ok := c[last]; !ok {
				return nil, fmt.Errorf("replace: no member %q", last)
			}
		}
		c[last] = value
	case []any:
		i := len(c)
		if last != "-" {
			i, err = strconv.Atoi(last)
			if err != nil || i < 0 || i > len(c) || (!insert && i == len(c)) {
				return nil, fmt.Errorf("bad index %q", last)
			}
		}
		var n []any
		if insert {
			n = append(append(append([]any{}, c[:i]...), value), c[i:]...)
		} else {
			n = append([]any{}, c...)
			n[i] = value
		}
		return setAt(doc, parts[:len(parts)-1], n, false)
	default:
		return nil, fmt.Errorf("cannot set %q", last)
	}
	return doc, nil
}

func removeAt(doc any, parts []string) (any, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("cannot remove the root")
	}
	parent, err := getAt(doc, parts[:len(parts)-1])
	if err != nil {
		return nil, err
	}
	last := parts[len(parts)-1]
	switch c := parent.(type) {
	case map[string]any:
		if _, ok := c[last]; !ok {
			return nil, fmt.Errorf("remove: no member %q", last)
		}
		delete(c, last)
	case []any:
		i, err := strconv.Atoi(last)
		if err != nil || i < 0 || i >= len(c) {
			return nil, fmt.Errorf("bad index %q", last)
		}
		n := append(append([]any{}, c[:i]...), c[i+1:]...)
		return setAt(doc, parts[:len(parts)-1], n, false)
	default:
		return nil, fmt.Errorf("cannot remove %q", last)
	}
	return doc, nil
}
