# The policy functions: the early flight, what a reply means, EHLO change checks.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PCTest;
use Pipeconnect;
use Pipeconnect::Constants qw(:all);

my $caps = Pipeconnect::Caps->parse($EXIM_EHLO);
my @seq = (PIPECONNECT_CMD_EHLO, PIPECONNECT_CMD_MAIL, PIPECONNECT_CMD_RCPT,
    { kind => PIPECONNECT_CMD_BDAT_LAST, size => 100 });
my %allowed = (settings => { flags => PIPECONNECT_SETTINGS_EARLY_ALLOWED },
    situation => { flags => PIPECONNECT_SITUATION_EHLO_NAME_KNOWN });

is_deeply([Pipeconnect::Policy::early_flight($caps, \@seq, %allowed)], [4, PIPECONNECT_REASON_END_OF_SEQUENCE],
    'all four may go early');
is_deeply([Pipeconnect::Policy::early_flight(undef, \@seq, %allowed)], [0, PIPECONNECT_REASON_NO_ENTRY],
    'nothing cached: classic');
is_deeply([Pipeconnect::Policy::early_flight($caps, \@seq, situation => $allowed{situation})],
    [0, PIPECONNECT_REASON_NOT_ALLOWED], 'not opted in: classic');
my ($n, $reason) = Pipeconnect::Policy::early_flight($caps,
    [PIPECONNECT_CMD_EHLO, PIPECONNECT_CMD_MAIL, PIPECONNECT_CMD_RCPT, PIPECONNECT_CMD_DATA], %allowed);
is($reason, PIPECONNECT_REASON_DATA_ENDS_FLIGHT, 'DATA ends the flight');
is($n, 4, 'up to and with DATA');
is(Pipeconnect::reason_name($reason), 'DATA_ENDS_FLIGHT', 'reason_name');
ok(Pipeconnect::Policy::used_extensions(\@seq) & PIPECONNECT_EXT_CHUNKING, 'BDAT uses CHUNKING');
my ($auth_n) = Pipeconnect::Policy::early_flight($caps,
    [PIPECONNECT_CMD_EHLO, { kind => PIPECONNECT_CMD_AUTH, mechanism => 'PLAIN' }, PIPECONNECT_CMD_MAIL], %allowed);
cmp_ok($auth_n, '>=', 1, 'an AUTH sequence is planned (mechanism passed as a string)');
my $err;
eval { Pipeconnect::Policy::early_flight($caps, [PIPECONNECT_CMD_MAIL, PIPECONNECT_CMD_EHLO], %allowed); 1 } or $err = $@;
is(ref $err && $err->code, PIPECONNECT_ERR_BAD_SEQUENCE, 'MAIL before EHLO: BAD_SEQUENCE');

my $cache = Pipeconnect::Cache->new;
my $key = Pipeconnect::Key->new('192.0.2.1');
$cache->learn($key, $EXIM_EHLO);
is_deeply([Pipeconnect::Policy::early_flight_cached($cache, $key, \@seq, %allowed)], [4, PIPECONNECT_REASON_END_OF_SEQUENCE],
    'early_flight_cached looks the key up');

my $o = Pipeconnect::Policy::outcome(PIPECONNECT_CMD_EHLO, 554, PIPECONNECT_CONTEXT_EARLY_USED);
is($o->{verdict}, PIPECONNECT_VERDICT_RECONNECT, '554 to an early EHLO: reconnect');
is($o->{cache}, PIPECONNECT_CACHE_INVALIDATE, 'and forget the server');
is(Pipeconnect::verdict_name($o->{verdict}), 'RECONNECT', 'verdict_name');
$o = Pipeconnect::Policy::outcome(PIPECONNECT_CMD_RCPT, 550, 0);
is($o->{verdict}, PIPECONNECT_VERDICT_REJECTED, '550 to RCPT: rejected');
is(Pipeconnect::command_name(PIPECONNECT_CMD_RCPT), 'RCPT', 'command_name');

my $fresh = Pipeconnect::Caps->parse("250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
my $check = Pipeconnect::Policy::check_ehlo($caps, $fresh, Pipeconnect::Policy::used_extensions(\@seq));
ok($check->{changed} & PIPECONNECT_EXT_PIPECONNECT, 'check_ehlo: PIPECONNECT withdrawn');
is($check->{cache}, PIPECONNECT_CACHE_INVALIDATE, 'check_ehlo: invalidate');

done_testing;
