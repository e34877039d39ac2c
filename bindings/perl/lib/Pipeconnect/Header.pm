package Pipeconnect::Header;
# Reading include/pipeconnect.h: the functions, #define constants and result codes it
# declares. Used by gen-constants.pl and by the test that checks the binding is complete.
use strict;
use warnings;

sub read_header {
    my ($path) = @_;
    open my $fh, '<', $path or die "cannot read the C header $path: $!\n";
    local $/;
    return scalar <$fh>;
}

sub strip_comments {
    my ($text) = @_;
    $text =~ s{/\*.*?\*/}{ }gs;
    $text =~ s{//[^\n]*}{}g;
    return $text;
}

# Every function declared: a name followed by '(' at the start of a declaration (after
# ';', '}', '{', a preprocessor line or the start), not a typedef.
sub functions {
    my ($text) = @_;
    my $body = join "\n", map { /^\s*#/ ? ';' : $_ } split /\n/, strip_comments($text);
    my %names;
    while ($body =~ /(?:^|[;{}])\s*((?:[A-Za-z_]\w*[\s*]+)+?)\**\s*(pipeconnect_\w+)\s*\(/mg) {
        my ($ret, $name) = ($1, $2);
        next if $ret =~ /^\s*(?:typedef|return)\b/;
        $names{$name} = 1;
    }
    return sort keys %names;
}

# #define PIPECONNECT_X <integer expression>, evaluated (numbers, <<, |, parentheses);
# the version macros, the include guard and PIPECONNECT_MUST_USE are not values.
sub defines {
    my ($text) = @_;
    my %out;
    for my $line (split /\n/, $text) {
        next unless $line =~ /^#define\s+(PIPECONNECT_\w+)\s+(.+?)\s*$/;
        my ($name, $expr) = ($1, $2);
        next if $name =~ /^PIPECONNECT_(?:VERSION_\w+|H|MUST_USE)$/;
        $expr =~ s{/[/*].*}{};
        next unless $expr =~ /^[\s\d()<|xXa-fA-FuU]+$/;
        $expr =~ s/(\d)[uU]+\b/$1/g;
        my $value = eval $expr;
        die "cannot evaluate $name = $expr\n" unless defined $value;
        $out{$name} = $value;
    }
    return %out;
}

sub result_codes {
    my ($text) = @_;
    my $body = strip_comments($text);
    $body =~ /enum\s+pipeconnect_result\s*\{(.*?)\}/s or die "no enum pipeconnect_result in the header\n";
    my %out;
    for my $item (split /,/, $1) {
        $out{$1} = $2 if $item =~ /(PIPECONNECT_\w+)\s*=\s*(\d+)/;
    }
    return %out;
}

1;
