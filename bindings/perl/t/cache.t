# The in-process cache: learn, lookup, time to live with a pinned clock, forget, stats,
# and errors as exceptions with the library's result code.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PCTest;
use Pipeconnect;
use Pipeconnect::Constants qw(:all);

my $cache = Pipeconnect::Cache->new(capacity => 100, ttl => $TTL);
$cache->set_time($T0);
my $key = Pipeconnect::Key->new('192.0.2.1', 25);

is($cache->lookup($key), undef, 'a new cache misses');
is($cache->learn($key, $EXIM_EHLO), 1, 'a reply with PIPECONNECT is stored');
my $caps = $cache->lookup($key);
isa_ok($caps, 'Pipeconnect::Caps', 'lookup after learn');
ok($caps->has(PIPECONNECT_EXT_PIPECONNECT), 'PIPECONNECT is offered');
ok($caps->has(PIPECONNECT_EXT_CHUNKING), 'CHUNKING is offered');
ok(!$caps->has(PIPECONNECT_EXT_DSN), 'DSN is not');
is($caps->size_limit, 52428800, 'SIZE');
is_deeply([$caps->auth_names], ['PLAIN'], 'AUTH mechanisms');
ok($caps->has_auth('plain'), 'has_auth ignores case');
is($caps->learned_at, $T0, 'learned at the pinned time');
ok($caps->flags & PIPECONNECT_EXT_STARTTLS, 'flags carry STARTTLS');
is($caps->limit(PIPECONNECT_LIMIT_RCPTMAX), undef, 'no LIMITS: no RCPTMAX');

$cache->set_time($T0 + $TTL - 1);
ok($cache->lookup($key), 'still there one second before the time to live');
$cache->set_time($T0 + $TTL + 1);
is($cache->lookup($key), undef, 'gone after the time to live');

$cache->set_time($T0);
is($cache->learn($key, "250-mx\r\n250 PIPELINING\r\n"), 0, 'without PIPECONNECT: not cached');
is($cache->lookup($key), undef, 'and an older entry is not found');
is($cache->learn($key, $EXIM_EHLO), 1, 'learn again');
is($cache->forget($key), 1, 'forget finds it');
is($cache->forget($key), 0, 'forget again finds nothing');
# The QHLO cookie (SMTP QUICKSTART, experimental), kept beside the capabilities.
is($cache->qhlo_cookie($key), undef, 'no QHLO cookie kept yet');
ok($cache->learn_qhlo_cookie($key, '00ff00ff'), 'a QHLO cookie is kept');
is($cache->qhlo_cookie($key), '00ff00ff', 'and found again');
is($cache->lookup($key), undef, 'it is no capability entry');
eval { $cache->learn_qhlo_cookie($key, 'a b') };
ok($@, 'a cookie with a space is refused');
is($cache->forget_qhlo_cookie($key), 1, 'forget_qhlo_cookie finds it');
is($cache->qhlo_cookie($key), undef, 'and it is gone');
$cache->learn($key, $EXIM_EHLO);
$cache->clear;
is($cache->lookup($key), undef, 'clear empties the cache');

my $st = $cache->stats;
cmp_ok($st->{inserts}, '>=', 3, 'stats count the inserts');
cmp_ok($st->{hits}, '>=', 2, 'stats count the hits');
cmp_ok($st->{misses}, '>=', 3, 'stats count the misses');

my $parsed = Pipeconnect::Caps->parse("250-mx\r\n250-PIPELINING\r\n250-LIMITS RCPTMAX=5 MAILMAX=2\r\n250 PIPECONNECT\r\n");
is($parsed->limit(PIPECONNECT_LIMIT_RCPTMAX), 5, 'LIMITS RCPTMAX parsed');
is($parsed->limits->{mail_max}, 2, 'limits() struct read back');
is($cache->learn_caps($key, $parsed), 1, 'learn_caps stores parsed caps');

# Errors: exceptions with the code, its name and the library's message.
my $err;
eval { $cache->learn($key, "not a reply\r\n"); 1 } or $err = $@;
isa_ok($err, 'Pipeconnect::Error', 'a malformed reply');
is($err->code, PIPECONNECT_ERR_MALFORMED_REPLY, 'its code') if $err;
is($err->name, 'PIPECONNECT_ERR_MALFORMED_REPLY', 'its name') if $err;
like("$err", qr/PIPECONNECT_ERR_MALFORMED_REPLY \(7200\)/, 'stringified') if $err;
ok(length($err->message) > 5, 'the library\'s message') if $err;
eval { Pipeconnect::Cache->new(capacity => PIPECONNECT_CACHE_CAPACITY_MAX + 1) };
is(ref $@ && $@->code, PIPECONNECT_ERR_INVALID_ARGUMENT, 'capacity above the maximum');
ok(Pipeconnect::result_is_error(PIPECONNECT_ERR_PANIC), 'result_is_error');
ok(!Pipeconnect::result_is_error(PIPECONNECT_NOT_FOUND), 'a miss is no error');

# Hold-down after a refused early flight.
my $hd = Pipeconnect::Cache::hold_down_default();
cmp_ok($hd->{first_seconds}, '>', 0, 'hold-down default has a first length');
$cache->learn($key, $EXIM_EHLO);
is($cache->held_down($key), 0, 'not held down');
$cache->note_early_refused($key);
cmp_ok($cache->held_down($key), '>', 0, 'held down after a refused early flight');
$cache->note_early_success($key);
ok($cache->set_hold_down(first_seconds => 60, max_seconds => 600), 'set_hold_down');

is(Pipeconnect::library_version(), '0.2.0', 'library version');
is(Pipeconnect::soname('0.2.0'), 'libpipeconnect.so.0.2', 'soname before 1.0');
is(Pipeconnect::soname('1.4.0'), 'libpipeconnect.so.1', 'soname from 1.0');
ok(!defined Pipeconnect::check_version('0.2.0'), 'same version: no warning');
like(Pipeconnect::check_version('0.2.5'), qr/0\.2\.5/, 'newer patch: a warning');
eval { Pipeconnect::check_version('0.3.0') };
like($@, qr/minor/, 'another minor before 1.0 is refused');
eval { Pipeconnect::check_version('1.2.0') };
like($@, qr/major/, 'another major is refused');

done_testing;
