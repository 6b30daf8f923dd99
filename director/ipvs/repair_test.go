package ipvs

import (
	"io"
	"log/slog"
	"testing"
)

func TestRepairsOfDriftAreCountedAndReportedButFirstPassAndIdleOnesAreNot(t *testing.T) {
	h := newHarness(t)
	var got []Repair
	r, err := NewReconciler(ReconcilerConfig{
		Kernel: h.fake, StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnRepair: func(rp Repair) { got = append(got, rp) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	h.baseState()
	h.sync() // the first pass programs everything: no drift
	if _, err := h.r.RepairAll(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 || h.r.Stats().Repairs != 0 {
		t.Fatalf("repairs %v (stats %d) before any drift", got, h.r.Stats().Repairs)
	}
	web := h.kernel()[key(t, h, "web")]
	if err := h.fake.DeleteService(web.Service); err != nil { // ipvsadm -D
		t.Fatal(err)
	}
	if _, err := h.r.Repair(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Recreated || got[0].Name != "web" || got[0].Service != web.Service.Key() {
		t.Fatalf("after ipvsadm -D: repairs %+v, want web recreated", got)
	}
	d := web.Destinations[0]
	d.Weight = 50 // ipvsadm -e -w 50
	if err := h.fake.UpdateDestination(web.Service, d); err != nil {
		t.Fatal(err)
	}
	if _, err := h.r.RepairAll(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Recreated || got[1].Name != "web" {
		t.Fatalf("after ipvsadm -e: repairs %+v, want web edited back", got)
	}
	if _, err := h.r.RepairAll(); err != nil {
		t.Fatal(err)
	}
	st := h.r.Stats()
	if len(got) != 2 || st.Repairs != 2 || st.PassTime <= 0 {
		t.Errorf("an idle pass: repairs %d (stats %d), pass time %v", len(got), st.Repairs, st.PassTime)
	}
}
