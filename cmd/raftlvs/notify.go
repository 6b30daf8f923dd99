package main

import (
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/raftlvs/raftlvs/daemon/notify"
)

// notifyConfig is the director's notify hooks, keepalived's notify_master/backup/fault and
// notify_up/down: each a command line (split on spaces, run without a shell) that gets the
// event as its arguments and in RAFTLVS_* variables.
type notifyConfig struct {
	Notify         string   `json:"notify"`
	NotifyLeader   string   `json:"notify_leader"`
	NotifyFollower string   `json:"notify_follower"`
	NotifyFault    string   `json:"notify_fault"`
	NotifyHealth   string   `json:"notify_health"`
	NotifyTimeout  duration `json:"notify_timeout"`
}

func (c *notifyConfig) register(f *pflag.FlagSet) {
	f.StringVar(&c.Notify, "notify", "", "command run on every event, with the event as its first argument (keepalived's notify): leader|follower DIRECTOR LEADER, fault DIRECTOR REASON, health SERVICE ADDR PORT up|down")
	f.StringVar(&c.NotifyLeader, "notify-leader", "", "command run when this director becomes the leader (its VIPs held), with the event's arguments")
	f.StringVar(&c.NotifyFollower, "notify-follower", "", "command run when this director follows a leader (after leading, or at start)")
	f.StringVar(&c.NotifyFault, "notify-fault", "", "command run when this director has had no leader for two election timeouts (no quorum, or cut off)")
	f.StringVar(&c.NotifyHealth, "notify-health", "", "command run on every director when a real server's committed health turns up or down (RAFTLVS_ROLE says if this one leads)")
	durationFlag(f, &c.NotifyTimeout, "notify-timeout", notify.DefaultTimeout, "longest a notify command may run: then it is killed, with its process group")
}

// hooks resolves each command's program on PATH now, so that a typo fails the start.
func (c *notifyConfig) hooks() (notify.Hooks, error) {
	var h notify.Hooks
	for _, x := range []struct {
		flag, line string
		to         *[]string
	}{
		{"--notify", c.Notify, &h.Any}, {"--notify-leader", c.NotifyLeader, &h.Leader},
		{"--notify-follower", c.NotifyFollower, &h.Follower}, {"--notify-fault", c.NotifyFault, &h.Fault},
		{"--notify-health", c.NotifyHealth, &h.Health},
	} {
		argv := strings.Fields(x.line)
		if len(argv) == 0 {
			continue
		}
		path, err := exec.LookPath(argv[0])
		if err == nil {
			// Commands run from /: ./hook.sh must name the file found here.
			path, err = filepath.Abs(path)
		}
		if err != nil {
			return notify.Hooks{}, usagef("%s %q: %v", x.flag, x.line, err)
		}
		argv[0] = path
		*x.to = argv
	}
	return h, nil
}
