#!/usr/bin/perl
# abuse.pl HOST PORT SILENT BANNER GARBAGE HOLD: open SILENT connections that
# send nothing, BANNER that send an SSH banner and stop, GARBAGE that send
# 64 KiB of random bytes; hold them all HOLD seconds (or until killed).
# Prints "open N of M" once the connects settled.
use strict; use warnings;
use IO::Socket::INET; use IO::Select; use Time::HiRes qw(time sleep);
$SIG{PIPE} = 'IGNORE';
$| = 1;
my ($host, $port, $silent, $banner, $garbage, $hold) = @ARGV;
my (@s, %kind);
my @kinds = (('silent') x $silent, ('banner') x $banner, ('garbage') x $garbage);
for my $k (@kinds) {
	my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
	    Proto => 'tcp', Blocking => 0) or next;
	push @s, $s; $kind{$s} = $k;
}
my $sel = IO::Select->new(@s);
my ($open, $end) = (0, time + 5);
while ($sel->count && time < $end) {
	for my $w ($sel->can_write(0.2)) {
		$sel->remove($w);
		next unless $w->connected;
		$open++;
		if ($kind{$w} eq 'banner') {
			syswrite($w, "SSH-2.0-abuse_1.0\r\n");
		} elsif ($kind{$w} eq 'garbage') {
			open(my $r, '<', '/dev/urandom') or die;
			my $buf; read($r, $buf, 65536); close $r;
			my $off = 0;
			my $t = time + 2;
			while ($off < length($buf) && time < $t) {
				my $n = syswrite($w, $buf, length($buf) - $off, $off);
				last if defined $n && $n == 0;
				if (!defined $n) { last unless $!{EAGAIN}; sleep 0.01; next; }
				$off += $n;
			}
		}
	}
}
print "open $open of ", scalar(@kinds), "\n";
sleep $hold;
