# The shared file store: two processes (fork) see each other's entries; a store opened
# before fork keeps working in both; a file that is not a store is refused with its code.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use FindBin;
use lib "$FindBin::Bin/lib";
use PCTest;
use Pipeconnect;
use Pipeconnect::Constants qw(:all);

my $dir = tempdir(CLEANUP => 1);
my $path = "$dir/pipeconnect.store";
my $key = Pipeconnect::Key->new('192.0.2.1', 25);

# A child that opens the store itself learns; the parent, with its own handle, finds it.
my $parent = Pipeconnect::Cache->open($path, sets => 64, ways => 4);
ok(-f $path, 'open creates the file');
is((stat $path)[2] & 07777, 0600, 'mode 0600 by default');
is($parent->lookup($key), undef, 'empty at first');

sub in_child {
    my ($code) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $ok = eval { $code->(); 1 };
        print STDERR "child: $@" unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    waitpid $pid, 0;
    return $? >> 8;
}

is(in_child(sub {
    my $c = Pipeconnect::Cache->open($path);
    $c->learn(Pipeconnect::Key->new('192.0.2.1', 25), $EXIM_EHLO) or die "not stored\n";
}), 0, 'a second process opens the store and learns');
my $caps = $parent->lookup($key);
ok($caps && $caps->has(PIPECONNECT_EXT_PIPECONNECT), 'the first process finds what the second learned');

# The handle opened before fork works in the child; the child forgets, the parent sees it.
is(in_child(sub {
    $parent->lookup($key) or die "the inherited handle misses\n";
    $parent->forget($key) or die "forget found nothing\n";
}), 0, 'the inherited handle works in the child');
is($parent->lookup($key), undef, 'the parent sees the child\'s forget');

# Several children learn different servers at the same time.
my @pids;
for my $i (1 .. 4) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $ok = eval {
            my $c = Pipeconnect::Cache->open($path);
            $c->learn(Pipeconnect::Key->new("192.0.2.$_", 25 + $i), $EXIM_EHLO) for 1 .. 20;
            1;
        };
        POSIX::_exit($ok ? 0 : 1);
    }
    push @pids, $pid;
}
my $failed = 0;
for (@pids) { waitpid $_, 0; $failed++ if $? }
is($failed, 0, 'four writers at once');
my $found = 0;
for my $i (1 .. 4) {
    $found += !!$parent->lookup(Pipeconnect::Key->new("192.0.2.$_", 25 + $i)) for 1 .. 20;
}
cmp_ok($found, '>=', 70, "the parent finds their entries ($found of 80; the rest evicted at most)");
cmp_ok($parent->stats->{inserts}, '>=', 81, 'the file counts every process\'s inserts');

# Not a store: refused with its own code and a detail.
my $bogus = "$dir/bogus";
open my $fh, '>', $bogus or die;
print $fh "x" x 8192;
close $fh;
chmod 0600, $bogus;
my $err;
eval { Pipeconnect::Cache->open($bogus); 1 } or $err = $@;
isa_ok($err, 'Pipeconnect::Error', 'a file that is not a store');
is($err->code, PIPECONNECT_ERR_STORE_BAD_MAGIC, 'refused as BAD_MAGIC') if $err;
ok(Pipeconnect::Cache->open($bogus, flags => PIPECONNECT_STORE_REBUILD_IF_INVALID), 'rebuilt on request');
symlink $path, "$dir/link";
eval { Pipeconnect::Cache->open("$dir/link") };
is(ref $@ && $@->code, PIPECONNECT_ERR_STORE_SYMLINK, 'a symbolic link is refused');

done_testing;
