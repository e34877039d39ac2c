package PCTest;
# Shared by the tests: a realistic EHLO reply (Exim 4.96's), the pinned time, skips.
use strict;
use warnings;
use Exporter 'import';
use Test::More ();
use FindBin;

our @EXPORT = qw($EXIM_EHLO $T0 $TTL $REPO skip_unless_ci);

our $EXIM_EHLO = join '', map { "$_\r\n" } (
    '250-mx.test.example Hello client.test [127.0.0.1]', '250-SIZE 52428800', '250-8BITMIME',
    '250-PIPELINING', '250-PIPECONNECT', '250-AUTH PLAIN', '250-CHUNKING', '250-STARTTLS',
    '250-SMTPUTF8', '250 HELP');
our $T0 = 1_700_000_000;
our $TTL = 3600;
our $REPO = "$FindBin::Bin/../../..";

# `prove -r bindings/perl/t` from a built tree: without $PIPECONNECT_LIBRARY the tests use
# the tree's library (release, else debug) and the module from bindings/perl/lib. With
# neither, the module loads the installed library by its soname.
BEGIN {
    my $repo = "$FindBin::Bin/../../..";
    unshift @INC, "$FindBin::Bin/../lib";
    if (!$ENV{PIPECONNECT_LIBRARY}) {
        my ($lib) = grep { -f } map { "$repo/target/$_/libpipeconnect.so" } qw(release debug);
        $ENV{PIPECONNECT_LIBRARY} = $lib if $lib && !$ENV{PIPECONNECT_USE_SYSTEM};
    }
}

# A missing peer (a compiler, the test sink) skips the test, except under CI=true, where
# CI installs every peer, so a missing one is a failure.
sub skip_unless_ci {
    my ($why, $count) = @_;
    if (($ENV{CI} // '') =~ /^(?:1|true|yes)$/i) {
        Test::More::fail("$why (CI is set, so this is a failure)");
        Test::More::done_testing();
        exit 1;
    }
    Test::More::plan(skip_all => $why);
}

1;
