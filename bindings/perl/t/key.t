# Keys: text forms, spellings of one address are one key, narrowing, bad input.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PCTest;
use Pipeconnect;
use Pipeconnect::Constants qw(:all);

my $k = Pipeconnect::Key->new('192.0.2.1', 25);
is("$k", '192.0.2.1:25/cleartext', 'text form');
is($k->with_tls(PIPECONNECT_TLS_ENCRYPTED)->to_string, '192.0.2.1:25/encrypted', 'with_tls');
is(Pipeconnect::Key->new('2001:DB8:0:0::1', 587, PIPECONNECT_TLS_ENCRYPTED)->to_string,
    '[2001:db8::1]:587/encrypted', 'IPv6 is written in its short, lower-case form');
for my $spelling ('[2001:db8::1]', '2001:0db8::1', '2001:db8:0::1', '2001:0DB8:0000:0000:0000:0000:0000:0001') {
    is(Pipeconnect::Key->new($spelling)->to_string, '[2001:db8::1]:25/cleartext', "$spelling is one key");
}
is(Pipeconnect::Key->new('::ffff:192.0.2.1')->to_string, '192.0.2.1:25/cleartext', 'IPv4-mapped IPv6 is the IPv4 key');

my $n = Pipeconnect::Key->new('192.0.2.1')->set_local('198.51.100.7')->set_ehlo_name('CLIENT.example');
is("$n", '192.0.2.1:25/cleartext from 198.51.100.7 as client.example', 'narrowed; the EHLO name in lower case');

# Narrowed keys are separate cache entries.
my $cache = Pipeconnect::Cache->new;
$cache->learn($n, $EXIM_EHLO);
is($cache->lookup($k), undef, 'the plain key does not see the narrowed entry');
ok($cache->lookup($n), 'the narrowed key does');

for my $case (['not an address', PIPECONNECT_ERR_INVALID_ADDRESS], ['example.org', PIPECONNECT_ERR_INVALID_ADDRESS]) {
    eval { Pipeconnect::Key->new($case->[0]) };
    is(ref $@ && $@->code, $case->[1], "'$case->[0]' is refused with its code");
}
eval { Pipeconnect::Key->new('192.0.2.1', 25, 7) };
is(ref $@ && $@->code, PIPECONNECT_ERR_INVALID_ARGUMENT, 'an unknown TLS state is refused');
eval { Pipeconnect::Key->new('192.0.2.1')->set_ehlo_name("bad name\r\n") };
ok(ref $@ && $@->code == PIPECONNECT_ERR_INVALID_EHLO_NAME, 'an EHLO name with CRLF is refused');

done_testing;
