# The binding against include/pipeconnect.h (or $PIPECONNECT_HEADER): every function is
# bound (and nothing the header dropped), every constant and result code has its value,
# and every struct's size and field offsets match what a C compiler makes of the header.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use FindBin;
use lib "$FindBin::Bin/lib";
use PCTest;
use Pipeconnect;
use Pipeconnect::Header;
use Pipeconnect::Constants;

my $header = $ENV{PIPECONNECT_HEADER} // "$REPO/include/pipeconnect.h";
my $text = Pipeconnect::Header::read_header($header);

my @declared = Pipeconnect::Header::functions($text);
cmp_ok(scalar @declared, '>=', 50, 'the header parser finds the functions');
my %declared = map { $_ => 1 } @declared;
my @unbound = grep { !$Pipeconnect::FUNCTIONS{$_} } @declared;
is_deeply(\@unbound, [], 'every function in the header is bound') or diag "unbound: @unbound";
my @stale = grep { !$declared{$_} } sort keys %Pipeconnect::FUNCTIONS;
is_deeply(\@stale, [], 'every bound function is in the header') or diag "stale: @stale";

# The argument count of each binding against its declaration.
my $body = Pipeconnect::Header::strip_comments($text);
my @wrong;
for my $name (@declared) {
    next unless $body =~ /\b\Q$name\E\s*\(([^)]*)\)/;
    my $params = $1;
    my $n = $params =~ /^\s*(?:void)?\s*$/ ? 0 : scalar(split /,/, $params);
    push @wrong, "$name: header $n, binding " . scalar @{ $Pipeconnect::FUNCTIONS{$name}[0] }
        if $Pipeconnect::FUNCTIONS{$name} && $n != @{ $Pipeconnect::FUNCTIONS{$name}[0] };
}
is_deeply(\@wrong, [], 'every binding takes as many arguments as its declaration');

my %defines = Pipeconnect::Header::defines($text);
cmp_ok(scalar keys %defines, '>=', 50, 'the header parser finds the constants');
my @bad = grep { ($Pipeconnect::Constants::VALUE{$_} // -1) != $defines{$_} } sort keys %defines;
is_deeply(\@bad, [], 'every #define constant has its value in Pipeconnect::Constants')
    or diag "missing or different (run gen-constants.pl): @bad";
my @gone = grep { !exists $defines{$_} } sort keys %Pipeconnect::Constants::VALUE;
is_deeply(\@gone, [], 'no constant the header dropped');
my %results = Pipeconnect::Header::result_codes($text);
is_deeply(\%Pipeconnect::Constants::RESULT, \%results, 'the result codes match enum pipeconnect_result');
for my $code (values %results) {
    my $msg = Pipeconnect::result_message($code);
    ok(defined $msg && length $msg, "result $code has a message") or last;
}

# Struct layouts, checked by the compiler.
my %structs = map { $_ => 1 } $body =~ /typedef struct (pipeconnect_\w+) \{/g;
is_deeply([sort keys %Pipeconnect::STRUCT_FIELDS], [sort keys %structs], 'every struct of the header has a layout');
my $cc = $ENV{CC} // 'cc';
if (system("command -v $cc >/dev/null 2>&1") != 0) {
    skip_unless_ci("no C compiler ($cc) to check the struct layouts");
}
my $dir = tempdir(CLEANUP => 1);
open my $fh, '>', "$dir/layout.c" or die;
print $fh "#include <stdio.h>\n#include <stddef.h>\n#include \"pipeconnect.h\"\nint main(void) {\n";
for my $s (sort keys %Pipeconnect::LAYOUT) {
    print $fh qq{    printf("$s -sizeof- %zu\\n", sizeof(struct $s));\n};
    for my $f (@{ $Pipeconnect::LAYOUT{$s}{names} }) {
        print $fh qq{    printf("$s $f %zu\\n", offsetof(struct $s, $f));\n};
    }
}
print $fh "    return 0;\n}\n";
close $fh;
my ($hdir) = $header =~ m{^(.*)/[^/]+$};
system("$cc -I'$hdir' -o '$dir/layout' '$dir/layout.c'") == 0 or BAIL_OUT('the layout program does not compile');
my @mismatch;
for my $line (`'$dir/layout'`) {
    my ($s, $f, $v) = split ' ', $line;
    my $mine = $f eq "-sizeof-" ? $Pipeconnect::LAYOUT{$s}{size} : $Pipeconnect::LAYOUT{$s}{offsets}{$f};
    push @mismatch, "$s.$f: C $v, Perl $mine" if $mine != $v;
}
is_deeply(\@mismatch, [], 'struct sizes and field offsets match the C compiler');

done_testing;
