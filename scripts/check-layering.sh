#!/usr/bin/env bash
# check-layering.sh OBJECT... - the sans-I/O rule, proved on the objects:
# nothing in src/base or src/core may reference sockets, clocks, libev,
# logging, process exit or a random source of its own.
set -euo pipefail
forbidden='^(socket|bind|connect|listen|accept4?|send|sendto|sendmsg|sendmmsg|recv|recvfrom|recvmsg|recvmmsg|read|write|open|close|poll|epoll_.*|select|clock_gettime|gettimeofday|time|sleep|usleep|nanosleep|ev_.*|printf|fprintf|vfprintf|puts|fputs|perror|syslog|vsyslog|exit|_exit|rand|srand|random|getrandom|randombytes_.*|ares_.*|getaddrinfo)$'
bad=0
for o in "$@"; do
	while read -r sym; do
		sym=${sym%%@*}
		if [[ $sym =~ $forbidden ]]; then
			echo "check-layering: $o references $sym" >&2
			bad=1
		fi
	done < <(nm -u "$o" | awk '{print $NF}')
done
[ $bad -eq 0 ] && echo "check-layering: ok ($# core objects, no I/O symbols)"
exit $bad
