# The example delivers twice to `pipeconnect serve`: the first connection is classic, the
# second sends its commands before the banner, and the sink's log shows early=1 for it.
# A banner delay makes "the flight arrived before the banner" certain, not a race.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use FindBin;
use lib "$FindBin::Bin/lib";
use PCTest;
use Pipeconnect;

my ($bin) = grep { defined && -x } ($ENV{PIPECONNECT_BIN}, "$REPO/target/release/pipeconnect", "$REPO/target/debug/pipeconnect");
skip_unless_ci('no pipeconnect command to run the test sink (cargo build -p pipeconnect-tools)') unless $bin;

my $dir = tempdir(CLEANUP => 1);
my $log = "$dir/sink.log";
my $pid = open(my $out, '-|', $bin, 'serve', '--listen', '127.0.0.1:0', '--log', $log,
    '--banner-delay-ms', '200')
    // die "cannot start $bin serve: $!";
my $first = <$out>;
my ($port) = ($first // '') =~ /^listening 127\.0\.0\.1:(\d+)/;
ok($port, "the sink listens ($first)") or do { kill 'TERM', $pid; done_testing; exit 1 };

my $example = "$FindBin::Bin/../examples/deliver.pl";
my $lib = "$FindBin::Bin/../lib";
my @lines = `$^X -I'$lib' '$example' 127.0.0.1 $port --times 2 --timeout 20 2>&1`;
is($?, 0, 'the example exits 0') or diag @lines;
like($lines[0] // '', qr/^delivery 1: classic, accepted, 2 group\(s\) of commands, 1 recipient\(s\) accepted$/, 'first delivery: classic');
like($lines[1] // '', qr/^delivery 2: early \(4 commands before the banner\), accepted, 1 group\(s\) of commands, 1 recipient\(s\) accepted$/, 'second delivery: early, one group');

# Run against the file store too: a second run of the example (another process) goes early at once.
my $store = "$dir/pc.store";
`$^X -I'$lib' '$example' 127.0.0.1 $port --store '$store' 2>&1`;
my @again = `$^X -I'$lib' '$example' 127.0.0.1 $port --store '$store' 2>&1`;
like($again[0] // '', qr/^delivery 1: early/, 'with the file store, the next process starts early');

kill 'TERM', $pid;
waitpid $pid, 0;
open my $fh, '<', $log or die "no sink log: $!";
my @log = <$fh>;
my @c1 = grep { /\bconn=1\b.*\bcmd=/ } @log;
my @c2 = grep { /\bconn=2\b.*\bcmd=/ } @log;
ok(@c1 && !grep({ /early=1/ } @c1), 'the sink saw connection 1 wait for the banner (early=0)');
my @early2 = grep { /early=1/ } @c2;
ok(scalar(grep { /cmd=EHLO/ } @early2), 'the sink logged connection 2\'s EHLO with early=1') or diag @c2;
ok(scalar(grep { /cmd=BDAT \d+ LAST/ } @early2), 'and its BDAT LAST with early=1');
is(scalar(grep { /message id=/ } @log), 4, 'the sink received four messages');
done_testing;
