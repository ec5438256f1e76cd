#!/usr/bin/perl
# echo.pl — the Perl baseline: Net::Server::Multiplex with an echo mux_input.
#
#   BENCH_MODE=echo|lines|header perl bench/servers/echo.pl PORT
#
# lines answers each \n-terminated line with the line (Perl's regex loop); header is the reload
# test's echo, which greets each connection with "PID %011d\n" first. Net::Server's HUP re-execs
# the server in the same pid, so the number there is an instance id (start time in ms), which
# changes with each restart as a worker's pid does.
package BenchEcho;
use strict;
use warnings;
use base 'Net::Server::Multiplex';
use Time::HiRes ();

my $instance = int(Time::HiRes::time() * 1000) % 100_000_000_000;

my $mode = $ENV{BENCH_MODE} || 'echo';

sub mux_connection {
    my ($self, $mux, $fh) = @_;
    print $fh sprintf("PID %011d\n", $instance) if $mode eq 'header';
}

sub mux_input {
    my ($self, $mux, $fh, $in_ref) = @_;
    if ($mode eq 'lines') {
        while ($$in_ref =~ s/^(.*?)\r?\n//) { print $fh "$1\n" }
        return;
    }
    print $fh $$in_ref;
    $$in_ref = '';
}

# A HUP re-execs the server from its command line ($0 and @ARGV, with PATH deleted), so this file
# is executable and started by its absolute path, and the port stays in @ARGV.
my $port = $ARGV[0] or die "usage: echo.pl PORT\n";
__PACKAGE__->run(port => "127.0.0.1:$port", log_level => ($ENV{BENCH_LOG} || 1), listen => 511);
