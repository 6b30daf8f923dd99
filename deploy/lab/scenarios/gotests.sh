#!/bin/bash
# gotests — the Go packages' lab tests (build tag `lab`) against this real kernel: each
# test binary in /lab/gotests (built on the host by `lab.sh test`/`lab.sh gotests`) runs
# with -test.v; the scenario fails if any test fails or no binary is there.
# shellcheck source=../lib.sh
. /lab/lib.sh

tests=$(ls /lab/gotests/*.test 2>/dev/null)
[ -n "$tests" ] || lab_die "no test binaries in /lab/gotests (run through lab.sh test or lab.sh gotests)"
export GOMAXPROCS=1 # see cluster.sh: fewer idle threads spinning under emulation
for t in $tests; do
	name=$(basename "$t" .test)
	lab_log "running $name"
	mkdir -p "/tmp/gotests/$name"
	# From an empty directory of its own: no test may depend on the host's source tree.
	if (cd "/tmp/gotests/$name" && "$t" -test.v -test.count=1 -test.timeout=240s) >"$LAB_RUN/$name.out" 2>&1; then
		lab_pass "$name: $(grep -c '^--- PASS' "$LAB_RUN/$name.out") passed, $(grep -c '^--- SKIP' "$LAB_RUN/$name.out") skipped"
	else
		lab_fail "$name: tests failed"
	fi
	# Top-level results and every message the tests logged; subtest lines only if failed.
	grep -v -E '^=== |^ +--- (PASS|SKIP)' "$LAB_RUN/$name.out" | sed 's/^/  | /'
done
LAB_DUMP_ON_FAIL=0 lab_done
