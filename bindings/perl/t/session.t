# Sessions with scripted replies: the first is classic and learns, the second goes early
# and is fed byte by byte; a refused early EHLO means reconnect.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PCTest;
use Pipeconnect;
use Pipeconnect::Constants qw(:all);

my %INTENT = (rcpts => ['b@example.net', 'c@example.net'], ehlo_name => 'client.test',
    mail_from => 'a@example.org', body_size => 100);
my %SETTINGS = (flags => PIPECONNECT_SETTINGS_EARLY_ALLOWED);
my $BANNER = "220 mx.test.example ESMTP\r\n";
my $TRANSACTION = "250 OK\r\n250 Accepted\r\n250 Accepted\r\n250 OK id=1\r\n";

my $cache = Pipeconnect::Cache->new(capacity => 100, ttl => $TTL);
$cache->set_time($T0);
my $key = Pipeconnect::Key->new('192.0.2.1', 25);

{
    my $s = Pipeconnect::Session->begin($cache, $key, intent => \%INTENT, settings => \%SETTINGS);
    is_deeply([$s->reason], [0, PIPECONNECT_REASON_NO_ENTRY], 'first session: no entry');
    is(scalar(my @none = $s->flight), 0, 'classic: nothing before the banner');
    my @ev = $s->feed($BANNER);
    is_deeply([map { [$_->{seq}, $_->{kind}, $_->{code}] } @ev], [[0, PIPECONNECT_CMD_BANNER, 220]], 'the banner event');
    my @cmds = $s->flight;
    is(scalar @cmds, 1, 'then EHLO');
    is($s->command_line($cmds[0]), "EHLO client.test\r\n", 'its line');
    @ev = $s->feed($EXIM_EHLO);
    ok($ev[0]{flags} & PIPECONNECT_EVENT_CACHE_STORED, 'the EHLO reply is learned');
    like($ev[0]{text}, qr/^mx\.test\.example Hello client\.test/, 'event text');
    @cmds = $s->flight;
    is_deeply([map { $_->{kind} } @cmds], [PIPECONNECT_CMD_MAIL, PIPECONNECT_CMD_RCPT, PIPECONNECT_CMD_RCPT, PIPECONNECT_CMD_BDAT_LAST], 'the transaction in one group');
    is_deeply([map { $s->command_line($_) } @cmds],
        ["MAIL FROM:<a\@example.org> SIZE=100\r\n", "RCPT TO:<b\@example.net>\r\n", "RCPT TO:<c\@example.net>\r\n", "BDAT 100 LAST\r\n"], 'lines');
    @ev = $s->feed($TRANSACTION);
    is_deeply([map { $_->{verdict} } @ev], [(PIPECONNECT_VERDICT_CONTINUE) x 4], 'all continue');
    ok($s->is_done, 'done');
    my $sum = $s->finish;
    ok($sum->{flags} & PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED, 'message accepted');
    ok(!($sum->{flags} & PIPECONNECT_SUMMARY_CLEARTEXT_EARLY), 'not early');
    is($sum->{rcpt_accepted}, 2, 'two recipients accepted');
}
{
    my $s = Pipeconnect::Session->begin($cache, $key, intent => \%INTENT, settings => \%SETTINGS);
    is_deeply([$s->reason], [5, PIPECONNECT_REASON_END_OF_SEQUENCE], 'second session: five commands early');
    my @cmds = $s->flight;
    is_deeply([map { $_->{seq} } @cmds], [1 .. 5], 'EHLO, MAIL, RCPT, RCPT, BDAT before the banner');
    ok(!grep({ !($_->{flags} & PIPECONNECT_SESSION_COMMAND_EARLY) } @cmds), 'all marked early');
    my $stream = $BANNER . $EXIM_EHLO . $TRANSACTION;
    my @events;
    push @events, $s->feed(substr $stream, $_, 1) for 0 .. length($stream) - 1;
    is_deeply([map { $_->{seq} } @events], [0 .. 5], 'fed byte by byte: one event per reply');
    ok(!grep({ !($_->{flags} & PIPECONNECT_EVENT_EARLY) } @events[1 .. 5]), 'the replies to early commands are marked');
    ok($s->is_done, 'done');
    is(scalar(my @none = $s->flight), 0, 'nothing left to send');
    my $caps = $s->server_caps;
    ok($caps && $caps->has(PIPECONNECT_EXT_PIPECONNECT), 'server_caps');
    my $sum = $s->finish;
    ok($sum->{flags} & PIPECONNECT_SUMMARY_CLEARTEXT_EARLY, 'summary: early');
    is($sum->{groups}, 1, 'one group of commands');
    eval { $s->flight };
    is(ref $@ && $@->code, PIPECONNECT_ERR_BAD_STATE, 'flight after finish: BAD_STATE');
}
{
    my $s = Pipeconnect::Session->begin($cache, $key, intent => \%INTENT, settings => \%SETTINGS);
    is(scalar(my @c = $s->flight), 5, 'early flight');
    my @ev = $s->feed($BANNER . "554 SMTP synchronization error\r\n");
    is($ev[1]{verdict}, PIPECONNECT_VERDICT_RECONNECT, 'a refused early EHLO: reconnect');
    ok($ev[1]{flags} & PIPECONNECT_EVENT_CACHE_INVALIDATED, 'and the entry is removed');
    is($s->finish->{verdict}, PIPECONNECT_VERDICT_RECONNECT, 'summary: reconnect');
    is($cache->lookup($key), undef, 'the cache forgot the server');
}
{
    my $err;
    eval { Pipeconnect::Session->begin($cache, $key, intent => { %INTENT, rcpts => ['b@example.net', "bad\r\naddr"] }, settings => \%SETTINGS) } or $err = $@;
    is(ref $err && $err->code, PIPECONNECT_ERR_INVALID_INTENT, 'a bad recipient: INVALID_INTENT');
    ok($err && $err->detail && $err->detail->{index} == 1, 'the detail names recipient 1');
}
done_testing;
