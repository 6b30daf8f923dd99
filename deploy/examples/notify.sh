#!/bin/sh
# /etc/raftlvs/notify.sh — a director's notify hook (--notify /etc/raftlvs/notify.sh).
# Arguments, as raftlvs passes them:
#   leader DIRECTOR LEADER          this director leads (its VIPs are held)
#   follower DIRECTOR LEADER        it follows LEADER
#   fault DIRECTOR REASON           no leader for two election timeouts (no quorum, cut off)
#   health SERVICE ADDR PORT STATE  a real server's committed health is now up or down
# The environment has RAFTLVS_EVENT, RAFTLVS_DIRECTOR, RAFTLVS_LEADER, RAFTLVS_ROLE,
# RAFTLVS_REASON, RAFTLVS_TIME and, for health, RAFTLVS_SERVICE, RAFTLVS_RS_ADDR,
# RAFTLVS_RS_PORT, RAFTLVS_HEALTH, RAFTLVS_PREVIOUS_HEALTH; PATH is fixed.
event=$1
shift
case $event in
leader | follower | fault)
	logger -t raftlvs-notify "director $1 is now $event ($*)"
	;;
health)
	# Every director runs this: act on the leader only, once per transition.
	[ "$RAFTLVS_ROLE" = leader ] || exit 0
	logger -t raftlvs-notify "real server $2:$3 of $1 is $4 (was $RAFTLVS_PREVIOUS_HEALTH: $RAFTLVS_REASON)"
	;;
esac
