#!/usr/bin/perl
# Deliver a message over SMTP with early pipelining (PIPECONNECT) when the cache allows it.
#
#   perl -Ibindings/perl/lib bindings/perl/examples/deliver.pl 127.0.0.1 2525 --times 2
#   ... --store /tmp/pc.store      (the shared file store instead of an in-process cache)
#
# The first delivery to a server is classic and learns its EHLO reply; later ones (with the
# same cache) send EHLO, MAIL, RCPT and the body before the banner arrives. The library
# plans and checks; this script owns the socket. Cleartext only (no STARTTLS here).
use strict;
use warnings;
use Getopt::Long qw(GetOptionsFromArray);
use IO::Socket::INET;
use Pipeconnect;
use Pipeconnect::Constants qw(:all);

# RFC 5321: CRLF line ends with a final CRLF; a leading '.' on a line doubled for DATA.
sub crlf_body {
    my ($text) = @_;
    $text =~ s/\r?\n/\r\n/g;
    $text .= "\r\n" unless $text =~ /\r\n\z/;
    return $text;
}
sub dot_stuff { my ($b) = @_; $b =~ s/^\./../mg; return $b }

sub write_all {
    my ($sock, $data) = @_;
    while (length $data) {
        my $n = syswrite $sock, $data;
        die "write: $!\n" unless defined $n;
        substr($data, 0, $n) = '';
    }
}

# One delivery; returns { summary, allowed, reason, events, sent }.
sub deliver {
    my ($cache, $host, $port, %o) = @_;
    my $body = crlf_body($o{body});
    my $stuffed = dot_stuff($body);
    # BDAT sends the body as is, DATA dot-stuffed: when they differ, ask for DATA so that
    # the size the intent gives is the size sent.
    my $mode = $stuffed eq $body ? PIPECONNECT_BODY_AUTO : PIPECONNECT_BODY_DATA;
    my $key = Pipeconnect::Key->new($host, $port);
    my $s = Pipeconnect::Session->begin($cache, $key,
        intent => { ehlo_name => $o{ehlo_name}, mail_from => $o{mail_from}, rcpts => $o{rcpts},
            body_size => length($mode == PIPECONNECT_BODY_DATA ? $stuffed : $body), body_mode => $mode },
        settings => { flags => $o{classic} ? 0 : PIPECONNECT_SETTINGS_EARLY_ALLOWED });
    my ($allowed, $reason) = $s->reason;    # the early flight planned from the cache
    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp',
        Timeout => $o{timeout}) or die "connect $host:$port: $@\n";
    my (@events, @sent);
    my $in_step = 1;
    eval {
        while (1) {
            # Everything the session releases now: before the banner, the early flight.
            my $out = '';
            for my $cmd ($s->flight) {
                if ($cmd->{kind} == PIPECONNECT_CMD_BODY) {
                    $out .= "$stuffed.\r\n";
                    push @sent, "<body " . length($stuffed) . " bytes>.\r\n";
                    next;
                }
                my $line = $s->command_line($cmd);
                $out .= $line;
                push @sent, $line;
                if ($cmd->{kind} == PIPECONNECT_CMD_BDAT_LAST) {
                    $out .= $body;
                    push @sent, "<body " . length($body) . " bytes>";
                }
            }
            write_all($sock, $out) if length $out;
            last if $s->is_done;
            local $SIG{ALRM} = sub { die "timeout waiting for the server\n" };
            alarm $o{timeout};
            my $n = sysread $sock, my $buf, 65536;
            alarm 0;
            if (!$n) { $in_step = 0; last }
            my @got = eval { $s->feed($buf) };
            if (my $err = $@) {
                die $err unless ref $err;
                push @events, $err->events;
                $in_step = 0;
                last;
            }
            push @events, @got;
            $in_step = 0 if grep { $_->{flags} & PIPECONNECT_EVENT_OUT_OF_STEP } @got;
        }
        1;
    } or do { my $e = $@; $in_step = 0; warn $e };
    my $summary = $s->finish;
    if ($in_step) {
        eval {
            write_all($sock, "QUIT\r\n");
            local $SIG{ALRM} = sub { die "timeout\n" };
            alarm $o{timeout};
            sysread $sock, my $bye, 65536;
            alarm 0;
        };
    }
    close $sock;
    return { summary => $summary, allowed => $allowed, reason => $reason, events => \@events, sent => \@sent };
}

sub describe {
    my ($n, $d) = @_;
    my $sum = $d->{summary};
    my $mode = $sum->{flags} & PIPECONNECT_SUMMARY_CLEARTEXT_EARLY
        ? "early ($d->{allowed} commands before the banner)" : 'classic';
    my $outcome = $sum->{flags} & PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED
        ? 'accepted' : 'not accepted (' . Pipeconnect::verdict_name($sum->{verdict}) . ')';
    return "delivery $n: $mode, $outcome, $sum->{groups} group(s) of commands, "
        . "$sum->{rcpt_accepted} recipient(s) accepted";
}

sub main {
    my @argv = @_;
    my %o = (ehlo_name => 'client.test', mail_from => 'sender@client.test', times => 1, timeout => 30);
    my @to;
    GetOptionsFromArray(\@argv, 'ehlo-name=s' => \$o{ehlo_name}, 'from=s' => \$o{mail_from},
        'to=s' => \@to, 'store=s' => \$o{store}, 'times=i' => \$o{times}, 'classic' => \$o{classic},
        'timeout=i' => \$o{timeout}) && @argv == 2
        or die "usage: deliver.pl HOST PORT [--times N] [--store PATH] [--to ADDR]... [--classic]\n";
    my ($host, $port) = @argv;
    my $cache = $o{store} ? Pipeconnect::Cache->open($o{store}) : Pipeconnect::Cache->new;
    my $status = 0;
    for my $n (1 .. $o{times}) {
        my $d = deliver($cache, $host, $port, %o, rcpts => [@to ? @to : 'rcpt@server.test'],
            body => "Subject: early pipelining\r\n\r\nHello from pipeconnect for Perl.\r\n");
        print describe($n, $d), "\n";
        $status = 1 unless $d->{summary}{flags} & PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED;
    }
    return $status;
}

exit main(@ARGV) unless caller;
1;
