# Where the library is looked for: $PIPECONNECT_LIBRARY alone when set, else the soname;
# a missing library is an error that lists what was tried.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PCTest;
use Pipeconnect;

ok(Pipeconnect::library_path(), 'loaded from ' . Pipeconnect::library_path());
{
    local $ENV{PIPECONNECT_LIBRARY} = '/nonexistent/libpipeconnect.so';
    is_deeply([Pipeconnect::library_candidates()], [['$PIPECONNECT_LIBRARY', '/nonexistent/libpipeconnect.so']],
        'the variable, when set, is the only candidate');
}
{
    local $ENV{PIPECONNECT_LIBRARY};
    delete $ENV{PIPECONNECT_LIBRARY};
    is_deeply([Pipeconnect::library_candidates()], [['soname', 'libpipeconnect.so.0.2']], 'else the soname');
}
# A fresh perl with a library path that does not exist fails to load, naming it.
my $lib = "$FindBin::Bin/../lib";
my $out = `PIPECONNECT_LIBRARY=/nonexistent/libpipeconnect.so $^X -I'$lib' -e 'use Pipeconnect' 2>&1`;
isnt($?, 0, 'use Pipeconnect fails without a library');
like($out, qr{could not be loaded.*\$PIPECONNECT_LIBRARY: /nonexistent/libpipeconnect\.so}s, 'and says what was tried');
done_testing;
