package chaos

import (
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"
)

// The registers' model for porcupine: one integer register per key, partitioned by key
// (linearizability is local: a history is linearizable iff each key's is).

type regInput struct {
	Key   int
	Write bool
	Value int
}

var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		var keys []int
		for _, op := range h {
			k := op.Input.(regInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.Write {
			return true, in.Value
		}
		return output.(int) == state.(int), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.Write {
			return fmt.Sprintf("set(%d, %d)", in.Key, in.Value)
		}
		return fmt.Sprintf("get(%d) → %d", in.Key, output.(int))
	},
}

// porcupineOps turns a history into porcupine's operations: an acknowledged write ends
// when its answer came, one whose outcome is unknown never ends (it may take effect at
// any time after its call), a failed one did not happen; a read is one operation per
// key, with the read's interval.
func porcupineOps(h []Op) []porcupine.Operation {
	var out []porcupine.Operation
	for _, op := range h {
		switch {
		case op.Kind == Write && op.Outcome != Failed:
			ret := int64(op.Return)
			if op.Outcome == Unknown {
				ret = math.MaxInt64
			}
			out = append(out, porcupine.Operation{ClientId: op.Client, Input: regInput{Key: op.Key, Write: true, Value: op.Value},
				Call: int64(op.Call), Return: ret, Output: 0})
		case op.Kind == Read && op.Outcome == OK:
			for k, v := range op.Values {
				out = append(out, porcupine.Operation{ClientId: op.Client, Input: regInput{Key: k},
					Call: int64(op.Call), Return: int64(op.Return), Output: v})
			}
		}
	}
	return out
}

// Linearizability is porcupine's verdict on the registers.
type Linearizability struct {
	Result   porcupine.CheckResult
	Ops      int
	Took     time.Duration
	Rendered string // the visualisation of a history that is not linearizable
}

// checkLinearizable runs porcupine over h, bounded by limit (then Unknown); a history
// that is not linearizable is drawn into dir.
func checkLinearizable(h []Op, limit time.Duration, dir string) Linearizability {
	ops := porcupineOps(h)
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, limit)
	l := Linearizability{Result: res, Ops: len(ops), Took: time.Since(start)}
	if res == porcupine.Illegal {
		path := filepath.Join(dir, "linearizability.html")
		if err := porcupine.VisualizePath(registerModel, info, path); err == nil {
			l.Rendered = path
		}
	}
	return l
}
