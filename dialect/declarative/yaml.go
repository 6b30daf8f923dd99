package declarative

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	yamlv2 "go.yaml.in/yaml/v2"
)

var errTrailing = errors.New("trailing data after the JSON value")

// orderedYAML turns JSON into YAML keeping the order of object keys (sigs.k8s.io/yaml
// sorts them, which puts a service's real servers between its settings). The YAML
// library is the one under sigs.k8s.io/yaml, the one decoder, which reads it back.
func orderedYAML(js []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	v, err := orderedValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errTrailing
	}
	return yamlv2.Marshal(v)
}

// orderedValue reads one JSON value: objects as yamlv2.MapSlice in their order, numbers
// as integers when they are whole (ports, weights), arrays as slices.
func orderedValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := yamlv2.MapSlice{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := orderedValue(dec)
				if err != nil {
					return nil, err
				}
				m = append(m, yamlv2.MapItem{Key: k, Value: v})
			}
			_, err := dec.Token() // }
			return m, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := orderedValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token() // ]
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		return t.Float64()
	}
	return tok, nil // string, bool, nil
}
