# The tracker: an MTA's own replies, judged by the library's rules.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PCTest;
use Pipeconnect;
use Pipeconnect::Constants qw(:all);

my $ehlo = join "\n", '250-mx.example.org Hello', '250-SIZE 52428800', '250-8BITMIME',
    '250-PIPELINING', '250-PIPECONNECT', '250-DSN', '250 STARTTLS';
my $cache = Pipeconnect::Cache->new;
my %req = (server => '192.0.2.25', rcpt_count => 2, flags => PIPECONNECT_TRACKER_EARLY_ALLOWED);

my $t = Pipeconnect::Tracker->begin($cache, %req);
is($t->plan->{mode}, PIPECONNECT_TRACKER_MODE_CLASSIC, 'nothing cached: classic');
is($t->plan->{reason}, PIPECONNECT_REASON_NO_ENTRY, 'reason NO_ENTRY');
my $s = $t->reply(PIPECONNECT_CMD_EHLO, 250, $ehlo);
ok($s->{flags} & PIPECONNECT_EVENT_CACHE_STORED, 'the EHLO reply, LF-joined and unended, is learned');
is($s->{size_limit}, 52428800, 'its SIZE');
undef $t;

$t = Pipeconnect::Tracker->begin($cache, %req, ignored_keywords => 'dsn');
is($t->plan->{mode}, PIPECONNECT_TRACKER_MODE_TRANSACTION, 'cached: an early transaction');
is($t->plan->{command_count}, 5, 'EHLO, MAIL, two RCPT, DATA');
ok(!($t->plan->{extensions} & PIPECONNECT_EXT_DSN), 'an ignored keyword is not in the plan');
$s = $t->reply(PIPECONNECT_CMD_BANNER, 554, '554 SMTP synchronization error');
is($s->{action}, PIPECONNECT_TRACKER_ACTION_RECONNECT, 'a 554 banner: reconnect');
undef $t;

$t = Pipeconnect::Tracker->begin($cache, %req);
is($t->plan->{reason}, PIPECONNECT_REASON_NO_ENTRY, 'the entry is gone after the refusal');
my $err;
eval { $t->reply(PIPECONNECT_CMD_MAIL, 600); 1 } or $err = $@;
is(ref $err && $err->code, PIPECONNECT_ERR_INVALID_ARGUMENT, 'a code past 599 is refused');
eval { Pipeconnect::Tracker->begin($cache, %req, server => 'nowhere'); 1 } or $err = $@;
is(ref $err && $err->code, PIPECONNECT_ERR_INVALID_ADDRESS, 'a bad address is refused');
done_testing;
