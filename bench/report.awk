# bench/report.awk: turn bench/run's "key value" result lines into the table
# (stdout) and the JSON file (-v json=PATH).  "cap" values sort last and print
# as "> cap s".  Ratio = how many times better simtun is (> 1: simtun better).

{ k = $1; v = $2; n[k]++; val[k, n[k]] = v; if (!(k in seen)) { seen[k] = 1; keys[++nkeys] = k } }

function isnum(x) { return x ~ /^-?[0-9.]+$/ }

# pct(k, p): nearest-rank percentile of key k; "cap" if it falls on a cap; "" if none.
function pct(k, p,    m, i, j, a, t, r) {
	m = n[k] + 0
	if (m == 0) return ""
	for (i = 1; i <= m; i++) a[i] = isnum(val[k, i]) ? val[k, i] + 0 : 1e18
	for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	r = int((p * m + 99) / 100); if (r < 1) r = 1; if (r > m) r = m
	return a[r] >= 1e18 ? "cap" : a[r]
}
function med(k) { return pct(k, 50) }
function first(k) { return n[k] ? val[k, 1] : "" }
function cnt(k) { return n[k] + 0 }

# a table row: item, simtun and openssh cells, ratio, target, met (1/0/"")
function row(item, s, o, ratio, target, met) {
	nrows++
	R_item[nrows] = item; R_s[nrows] = s; R_o[nrows] = o; R_r[nrows] = ratio
	R_t[nrows] = target; R_m[nrows] = met
}
function secs(x, cap) {
	if (x == "") return "n/a"
	if (x == "cap") return "> " cap " s"
	return sprintf("%.2f s", x)
}
# ratio of times: openssh / simtun (either may be capped or missing)
function tratio(s, o, cap) {
	if (s == "" || o == "" || s == "cap" || s <= 0) return "n/a"
	if (o == "cap") return sprintf("> %.0fx", cap / s)
	return sprintf("%.1fx", o / s)
}
function nratio(a, b) {		# a / b for plain numbers
	if (a == "" || b == "" || b + 0 == 0) return "n/a"
	return sprintf("%.2fx", a / b)
}
function le(x, lim) { return (x == "" || x == "cap") ? (x == "cap" ? 0 : "") : (x + 0 <= lim) }
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
function per_dev(kind, N,   b, a) {	# kB per device from PSS delta
	b = first("fleet." kind "." N ".base_pss"); a = first("fleet." kind "." N ".pss")
	if (a == "" || b == "") return ""
	return (a - b) / N
}

END {
	# 1. reboot-to-reachable
	s = med("reboot.simtun.0.5"); o = med("reboot.openssh.0.5")
	row(sprintf("reboot-to-reachable, laptop every 0.5 s: median (n=%d/%d)", cnt("reboot.simtun.0.5"), cnt("reboot.openssh.0.5")),
	    secs(s, capf), secs(o, capf), tratio(s, o, capf), "<= 1 s", le(s, 1))
	s = pct("reboot.simtun.0.5", 95); o = pct("reboot.openssh.0.5", 95)
	row("reboot-to-reachable, laptop every 0.5 s: p95", secs(s, capf), secs(o, capf), tratio(s, o, capf), "<= 1 s", le(s, 1))
	s = med("reboot.simtun.30"); o = med("reboot.openssh.30")
	row(sprintf("reboot-to-reachable, laptop every 30 s: median (n=%d/%d)", cnt("reboot.simtun.30"), cnt("reboot.openssh.30")),
	    secs(s, caps), secs(o, caps), tratio(s, o, caps), "", "")
	s = pct("reboot.simtun.30", 95); o = pct("reboot.openssh.30", 95)
	row("reboot-to-reachable, laptop every 30 s: p95", secs(s, caps), secs(o, caps), tratio(s, o, caps), "", "")
	# 2. failover
	s = med("failover.simtun.detect"); o = med("failover.openssh.detect")
	row("dead cellular path: client notices (keepalive 5 s x 3), median", secs(s, focap), secs(o, focap), tratio(s, o, focap), "", "")
	s = med("failover.simtun.reach"); o = med("failover.openssh.reach")
	row("dead cellular path: reachable again (simtun via Arc), median", secs(s, focap), secs(o, focap), tratio(s, o, focap), "", "")
	# 3. throughput and latency
	s = med("bulk.simtun.ssh"); o = med("bulk.openssh.ssh")
	row("throughput laptop->device, ssh 'cat >/dev/null' (MB/s)", s == "" ? "n/a" : s, o == "" ? "n/a" : o, nratio(s, o), ">= 1.2x", (s != "" && o != "") ? (s / o >= 1.2) : "")
	s = med("bulk.simtun.raw"); o = med("bulk.openssh.raw")
	row("throughput laptop->device, plain TCP through tunnel (MB/s)", s == "" ? "n/a" : s, o == "" ? "n/a" : o, nratio(s, o), ">= 1.2x", (s != "" && o != "") ? (s / o >= 1.2) : "")
	d = med("rtt.direct"); s = med("rtt.simtun"); o = med("rtt.openssh")
	if (d != "" && s != "") s = sprintf("%.1f", s - d); else s = ""
	if (d != "" && o != "") o = sprintf("%.1f", o - d); else o = ""
	row(sprintf("latency added by relay+tunnel, 64 B round trip (us; direct %s)", d == "" ? "n/a" : d),
	    s == "" ? "n/a" : s, o == "" ? "n/a" : o, (s > 0 && o != "") ? sprintf("%.1fx", o / s) : "n/a", "", "")
	s = med("bulkcpu.simtun.relay") + med("bulkcpu.simtun.device"); o = med("bulkcpu.openssh.relay") + med("bulkcpu.openssh.device")
	row(sprintf("tunnel CPU per MB, relay + device client (ms; %s + %s vs %s + %s)", med("bulkcpu.simtun.relay"), med("bulkcpu.simtun.device"), med("bulkcpu.openssh.relay"), med("bulkcpu.openssh.device")),
	    cnt("bulkcpu.simtun.relay") ? sprintf("%.2f", s) : "n/a", cnt("bulkcpu.openssh.relay") ? sprintf("%.2f", o) : "n/a", nratio(o, s), "", "")
	# 3b. the operator's path (ssh -J): simtun relay vs sshd as jump host
	s = med("jump.simtun.ssh"); o = med("jump.openssh.ssh")
	row("operator ssh -J throughput, 'cat >/dev/null' (MB/s)", s == "" ? "n/a" : s, o == "" ? "n/a" : o, nratio(s, o), "", "")
	s = med("jumprtt.simtun"); o = med("jumprtt.openssh")
	row("operator ssh -J -L, 64 B round trip (us)", s == "" ? "n/a" : s, o == "" ? "n/a" : o, nratio(o, s), "", "")
	s = med("jumplogin.simtun"); o = med("jumplogin.openssh")
	row("operator ssh -J login, two handshakes (s)", secs(s, 0), secs(o, 0), tratio(s, o, 0), "", "")
	s = med("held.simtun"); o = med("held.openssh")
	row("half-open reboot: client starts -> operator lands (simtun: held, no retry; OpenSSH: retry 0.5 s)",
	    secs(s, 120), secs(o, 120), tratio(s, o, 120), "", "")
	# 4. relay memory and handshake rate
	s = per_dev("simtun", 1000); o = per_dev("openssh", 1000)
	row("relay memory per idle device, 1,000 devices (PSS, KB)", s == "" ? "n/a" : sprintf("%.1f", s),
	    o == "" ? "n/a" : sprintf("%.0f", o), nratio(o, s), "", "")
	s10 = per_dev("simtun", big)
	row("relay memory per idle device, 10,000 devices* (PSS, KB)", s10 == "" ? "n/a" : sprintf("%.1f", s10),
	    o == "" ? "n/a" : sprintf("%.0f (1k, scaled)", o), nratio(o, s10), "<= 50 KB", s10 == "" ? "" : (s10 <= 50))
	s = first("fleet.simtun.1000.rate"); o = first("fleet.openssh.1000.rate")
	row("handshake rate, 1,000 devices (per s, 256 in flight)", s == "" ? "n/a" : s, o == "" ? "n/a" : o, nratio(s, o), "", "")
	s10 = first("fleet.simtun." big ".rate")
	row("handshake rate, 10,000 devices* (per s)", s10 == "" ? "n/a" : s10, o == "" ? "n/a" : o " (1k)", nratio(s10, o), "", "")
	s = first("fleet.simtun.1000.ramp_relay_cpu_ms"); o = first("fleet.openssh.1000.ramp_relay_cpu_ms")
	s10 = first("fleet.simtun." big ".ramp_relay_cpu_ms")
	row("relay CPU per handshake (ms), 1,000 [10,000*]", s == "" ? "n/a" : s (s10 == "" ? "" : " [" s10 "]"), o == "" ? "n/a" : o, nratio(o, s), "", "")
	# 5. storm
	s = first("fleet.simtun.1000.storm_s"); o = first("fleet.openssh.1000.storm_s")
	row("reconnect storm after relay SIGKILL, 1,000 devices", secs(s, 120), secs(o, 120), tratio(s, o, 120), "", "")
	s = first("fleet.simtun." big ".storm_s")
	row("reconnect storm after relay SIGKILL, 10,000 devices*", secs(s, 120), "not run", "n/a", "<= 10 s", le(s, 10))
	# 5b. several relays on one Redis directory (b_cluster.sh): simtun only,
	# OpenSSH has no equivalent ("-" in its column and the ratio)
	cn = first("cluster.n"); cd = first("cluster.on_dead"); ccap = first("cluster.cap")
	c = med("cluster.rtt.cross"); d = med("cluster.rtt.direct")
	row("cluster: 64 B round trip to a device on relay B, via relay A / via B, median (us)",
	    (c == "" || d == "") ? "n/a" : sprintf("%.1f / %.1f", c, d), "-", "-", "", "")
	c9 = med("cluster.rtt99.cross"); d9 = med("cluster.rtt99.direct")
	row("cluster: 64 B round trip to a device on relay B, via relay A / via B, p99 (us)",
	    (c9 == "" || d9 == "") ? "n/a" : sprintf("%.1f / %.1f", c9, d9), "-", "-", "", "")
	c = med("cluster.rttdiff"); c9 = med("cluster.rtt99diff")
	row("cluster: latency added by the relay-to-relay hop, median [p99] (us; median of paired runs)",
	    (c == "" || c9 == "") ? "n/a" : sprintf("%.1f [%.1f]", c, c9), "-", "-", "", "")
	s = first("cluster.storm_s")
	row(sprintf("cluster: 1 of 3 relays SIGKILLed (%s of %s devices): all up on the other 2",
	    cd == "" ? "?" : cd, cn == "" ? "?" : cn), secs(s, ccap), "-", "-", "", "")
	s = first("cluster.dir_full_s"); o = first("cluster.lease_s")
	row("cluster: directory lists them all on the other 2 [dead relay reaped; lease 10 s]",
	    s == "" ? "n/a" : secs(s, ccap) " [" secs(o, ccap) "]", "-", "-", "", "")
	s = first("cluster.storm_relay_cpu_s")
	row(sprintf("cluster: relays' CPU during the storm, 2 survivors (s; %s + %s)",
	    first("cluster.storm_relay2_cpu_s"), first("cluster.storm_relay3_cpu_s")),
	    s == "" ? "n/a" : sprintf("%.2f", s), "-", "-", "", "")
	s = first("cluster.claims_per_s"); o = first("cluster.claims_peak_per_s")
	row(sprintf("cluster: directory claims per second in the storm, mean [most in 1 s] (%s claims)",
	    first("cluster.claims") == "" ? "?" : first("cluster.claims")),
	    s == "" ? "n/a" : s " [" o "]", "-", "-", "", "")
	s = first("cluster.redis_cpu_s"); o = first("cluster.redis_eval_ms")
	row("cluster: Redis CPU during the storm (s) [in the relays' scripts, ms]",
	    s == "" ? "n/a" : sprintf("%.3f [%.0f]", s, o), "-", "-", "", "")
	# 6. agent
	s = first("agent.simtun.rss"); o = first("agent.openssh.rss")
	row("device side RSS, idle (MB; autossh + ssh)", s == "" ? "n/a" : sprintf("%.1f", s / 1024), o == "" ? "n/a" : sprintf("%.1f", o / 1024), nratio(o, s), "<= 3 MB", s == "" ? "" : (s / 1024 <= 3))
	s = first("agent.simtun.pss"); o = first("agent.openssh.pss")
	row("device side PSS, idle (MB)", s == "" ? "n/a" : sprintf("%.1f", s / 1024), o == "" ? "n/a" : sprintf("%.1f", o / 1024), nratio(o, s), "", "")
	s = first("agent.simtun.wakeups"); o = first("agent.openssh.wakeups")
	row(sprintf("device side wakeups per idle minute (%s s window)", agwin), s == "" ? "n/a" : s, o == "" ? "n/a" : o, nratio(o, s), "", "")
	s = first("agent.simtun.bytes_hour"); o = first("agent.openssh.bytes_hour")
	row("keepalive bytes per idle hour on cellular (KB of IP; detection 30 s)", s == "" ? "n/a" : sprintf("%.0f", s / 1000), o == "" ? "n/a" : sprintf("%.0f", o / 1000), nratio(o, s), "", "")

	# --- table
	printf "simtun bench %s (%s), %s CPUs: %s, kernel %s, build %s\n", date, quick ? "quick" : "full", nproc, cpu, kernel, rev
	printf "ratio = how many times better simtun is (> 1: simtun better); cipher %s\n\n", first("bulk.cipher")
	w = 0; for (i = 1; i <= nrows; i++) if (length(R_item[i]) > w) w = length(R_item[i])
	fmt = "%-" w "s  %14s  %18s  %8s  %-9s %s\n"
	printf fmt, "item", "simtun", "OpenSSH+autossh", "ratio", "target", ""
	line = ""; for (i = 0; i < w + 60; i++) line = line "-"; print line
	for (i = 1; i <= nrows; i++)
		printf fmt, R_item[i], R_s[i], R_o[i], R_r[i], R_t[i], R_m[i] == "" ? "" : (R_m[i] ? "met" : "MISSED")
	print line
	printf "Reboots: half-open (carrier drops the old address, no FIN/RST), t0 = device back up with its\n"
	printf "  agent/autossh started; laptop tries at t0 (0.5 s) or t0+offset spread over 30 s, then every\n"
	printf "  interval; OpenSSH capped at %s s (0.5 s laptop) and %s s (30 s laptop). Relays keepalive 15 s x 3;\n", capf, caps
	printf "  device keepalive 30 s x 3 (agent defaults; autossh -M 0, ServerAliveInterval 30).\n"
	printf "Failover: autossh has no second path: it can only retry the blackholed default route (cap %s s).\n", focap
	printf "Fleets: bench/loadgen, one process, libssh sessions with one key and port each, from one address;\n"
	printf "  max_startups = fleet size (sshd MaxStartups), simtun penalty_exempt = generator address; storm =\n"
	printf "  SIGKILL (sshd: all its processes), restart after 2 s, devices reconnect like simtun-agent.\n"
	printf "  * 10,000 devices = %s here: RLIMIT_NOFILE hard limit %s and the relay holds 3 fds per device\n", big, hardlimit
	printf "    (its socket, libssh's copy of it, the device's port).\n"
	printf "  OpenSSH at 10,000 not run (process per session: ~10,000 x the 1k PSS per device); its 1k figures shown.\n"
	printf "  The generator shares the %s CPUs with the relay (see relay CPU per handshake for the relay's own cost).\n", nproc
	printf "Cluster: 3 simtun-relays, one redis-server (no persistence), lease_time 10 s; loadgen's devices\n"
	printf "  split over the 3, each falling back to the others at once (like simtun-agent's [relay] list);\n"
	printf "  storm times from the SIGKILL. Round trips: ssh -L to a named forward (an echo on the device).\n"
	printf "  OpenSSH has no cluster of relays: \"-\".\n"
	if (failed != "") printf "FAILED sections: %s\n", failed

	# --- JSON
	printf "{\n  \"date\": %s,\n  \"mode\": %s,\n  \"nproc\": %d,\n  \"cpu\": %s,\n  \"kernel\": %s,\n  \"build\": %s,\n", \
	    jstr(date), jstr(quick ? "quick" : "full"), nproc, jstr(cpu), jstr(kernel), jstr(rev) >json
	printf "  \"caps_s\": { \"reboot_0.5\": %d, \"reboot_30\": %d, \"failover\": %d },\n", capf, caps, focap >json
	printf "  \"failed\": %s,\n  \"rows\": [\n", jstr(failed) >json
	for (i = 1; i <= nrows; i++)
		printf "    { \"item\": %s, \"simtun\": %s, \"openssh\": %s, \"ratio\": %s, \"target\": %s, \"met\": %s }%s\n",
		    jstr(R_item[i]), jstr(R_s[i]), jstr(R_o[i]), jstr(R_r[i]), jstr(R_t[i]),
		    R_m[i] == "" ? "null" : (R_m[i] ? "true" : "false"), i < nrows ? "," : "" >json
	printf "  ],\n  \"raw\": {\n" >json
	for (i = 1; i <= nkeys; i++) {
		k = keys[i]; s = ""
		for (j = 1; j <= n[k]; j++) s = s (j > 1 ? ", " : "") (isnum(val[k, j]) ? val[k, j] : jstr(val[k, j]))
		printf "    %s: [%s]%s\n", jstr(k), s, i < nkeys ? "," : "" >json
	}
	printf "  }\n}\n" >json
	close(json)
}
