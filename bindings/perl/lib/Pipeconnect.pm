package Pipeconnect;
# Perl binding for libpipeconnect (SMTP early pipelining, PIPECONNECT) over FFI::Platypus.
# See bindings/perl/README.md. Structs are packed into Perl strings whose buffers the
# library reads or writes (every struct starts with struct_size = its size).
use strict;
use warnings;
use Carp ();
use FFI::Platypus 1.00;
use FFI::Platypus::Buffer qw(scalar_to_buffer buffer_to_scalar);
use Pipeconnect::Constants qw(:all);

our $VERSION = '0.2.0';
# The library version this binding was written for, and the oldest it accepts.
our $LIBRARY_VERSION = '0.2.0';
our $MIN_LIBRARY_VERSION = '0.2.0';
our $ENV_LIBRARY = 'PIPECONNECT_LIBRARY';

# --- Struct layouts (LP64 C layout: each field at its natural alignment) -------------

my %FIELD_TYPE = (
    size_t => ['J', 8], u64 => ['Q', 8], u32 => ['L', 4], i32 => ['l', 4], u16 => ['S', 2],
    ptr    => ['J', 8], str => ['J', 8],
);

# name => [field, type, ...]; 'charsN' is char[N].
our %STRUCT_FIELDS = (
    pipeconnect_cache_stats => [map { ($_, 'u64') } qw(entries hits misses inserts evictions
        expirations invalidations hold_downs_entered early_skipped_held_down hold_downs_current
        writes_abandoned shared_hits shared_misses shared_errors shared_timeouts
        shared_skipped_open shared_rejected)],
    pipeconnect_shared_options => [flags => 'u32', deadline_ms => 'u32', backoff_ms => 'u32',
        reserved => 'u32', local_ttl_cap_seconds => 'u64', key_prefix => 'str', secret => 'ptr',
        secret_len => 'size_t'],
    pipeconnect_hold_down => [first_seconds => 'u64', max_seconds => 'u64', remember_seconds => 'u64',
        growth => 'u32', decay_after => 'u32', flags => 'u32', reserved => 'u32'],
    pipeconnect_limits => [mail_max => 'u32', rcpt_max => 'u32', rcpt_domain_max => 'u32'],
    pipeconnect_store_options => [sets => 'u32', ways => 'u32', ttl_seconds => 'u64', mode => 'u32',
        flags => 'u32', owner_uid => 'u32', owner_gid => 'u32', group_gid => 'u32', reserved => 'u32'],
    pipeconnect_command => [kind => 'u32', flags => 'u32', size => 'u64', mechanism => 'str'],
    pipeconnect_situation => [phase => 'u32', flags => 'u32'],
    pipeconnect_settings => [flags => 'u32', max_first_flight_body => 'u64'],
    pipeconnect_outcome => [cache => 'u32', verdict => 'u32', flags => 'u32'],
    pipeconnect_ehlo_check => [cache => 'u32', flags => 'u32', changed => 'u32', used_changed => 'u32'],
    pipeconnect_intent => [ehlo_name => 'str', flags => 'u32', body_mode => 'u32',
        auth_mechanism => 'str', mail_from => 'str', rcpts => 'ptr', rcpt_count => 'size_t',
        body_size => 'u64'],
    pipeconnect_session_command => [seq => 'size_t', kind => 'u32', flags => 'u32',
        rcpt_index => 'size_t', size => 'u64'],
    pipeconnect_event => [seq => 'size_t', kind => 'u32', verdict => 'u32', flags => 'u32',
        code => 'u32', rcpt_index => 'size_t', enhanced_class => 'u32', enhanced_subject => 'u32',
        enhanced_detail => 'u32', changed_extensions => 'u32', text => 'ptr', text_len => 'size_t',
        raw => 'ptr', raw_len => 'size_t'],
    pipeconnect_summary => [verdict => 'u32', flags => 'u32', rcpt_accepted => 'size_t',
        rcpt_rejected => 'size_t', rcpt_deferred => 'size_t', rcpt_not_attempted => 'size_t',
        replies_outstanding => 'size_t', groups => 'size_t'],
    pipeconnect_prebanner_options => [flags => 'u32', max_commands => 'u32', max_bytes => 'u64',
        max_body => 'u64'],
    pipeconnect_prebanner_verdict => [class_ => 'u32', reason => 'u32', commands => 'u32',
        flags => 'u32', bytes => 'u64'],
    pipeconnect_tracker_request => [server => 'str', port => 'u16', phase => 'u32', flags => 'u32',
        rcpt_count => 'u32', message_size => 'u64', relies_on => 'u32', required => 'u32',
        ignored_keywords => 'str', local => 'str', ehlo_name => 'str'],
    pipeconnect_tracker_plan => [mode => 'u32', reason => 'u32', command_count => 'size_t',
        extensions => 'u32', size_limit => 'u64'],
    pipeconnect_tracker_step => [action => 'u32', verdict => 'u32', flags => 'u32',
        extensions => 'u32', size_limit => 'u64'],
    pipeconnect_error_detail => [result => 'i32', os_errno => 'i32', index => 'size_t', flags => 'u32',
        field => 'chars64', message => 'chars256'],
);

our %LAYOUT;    # name => { size, names => [...], offsets => {field => offset}, pack, unpack }
for my $name (keys %STRUCT_FIELDS) {
    my @spec = (struct_size => 'size_t', @{ $STRUCT_FIELDS{$name} });
    my ($off, $max, @names, %offsets, @codes) = (0, 1);
    while (my ($field, $type) = splice @spec, 0, 2) {
        my ($code, $align, $size) = $type =~ /^chars(\d+)$/ ? ("Z$1", 1, $1) : (@{ $FIELD_TYPE{$type} }, $FIELD_TYPE{$type}[1]);
        $off = ($off + $align - 1) - (($off + $align - 1) % $align);
        push @names, $field;
        $offsets{$field} = $off;
        push @codes, "\@$off $code";
        $off += $size;
        $max = $align if $align > $max;
    }
    my $size = ($off + $max - 1) - (($off + $max - 1) % $max);
    $LAYOUT{$name} = { size => $size, names => \@names, offsets => \%offsets,
        tpl => join(' ', @codes) . " \@$size" };
}

# A packed struct from a hash of field values (missing: 0 or NULL); struct_size is set.
# String fields (const char *) point into NUL-terminated copies pushed onto @$keep, which
# the caller keeps alive for the call.
my %IS_STRING;
for my $name (keys %STRUCT_FIELDS) {
    my %f = @{ $STRUCT_FIELDS{$name} };
    $IS_STRING{$name}{$_} = 1 for grep { $f{$_} eq 'str' } keys %f;
}
sub _pack {
    my ($name, $values, $keep) = @_;
    my $l = $LAYOUT{$name} or Carp::croak("no struct $name");
    my %v = %{ $values || {} };
    $v{struct_size} = $l->{size};
    my @vals;
    for my $field (@{ $l->{names} }) {
        my $x = $v{$field};
        if ($IS_STRING{$name}{$field}) {
            if (defined $x) {
                Carp::croak("_pack $name: a string field needs a keep list") unless $keep;
                push @$keep, "$x\0";
                ($x) = scalar_to_buffer($keep->[-1]);
            }
        }
        push @vals, $x // 0;
    }
    return pack $l->{tpl}, @vals;
}

sub _unpack {
    my ($name, $buf) = @_;
    my $l = $LAYOUT{$name};
    my %h;
    @h{ @{ $l->{names} } } = unpack $l->{tpl}, $buf;
    delete $h{struct_size};
    return \%h;
}

sub _buf_ptr { my ($p) = scalar_to_buffer($_[0]); return $p }

# --- Loading the library --------------------------------------------------------------

sub soname {
    my ($version) = @_;
    my ($major, $minor) = split /\./, ($version // $LIBRARY_VERSION);
    return $major == 0 ? "libpipeconnect.so.0.$minor" : "libpipeconnect.so.$major";
}

sub library_candidates {
    return ["\$$ENV_LIBRARY", $ENV{$ENV_LIBRARY}] if $ENV{$ENV_LIBRARY};
    return ['soname', soname()];
}

sub _version_parts {
    my ($v) = @_;
    $v =~ /^(\d+)\.(\d+)\.(\d+)$/ or die Pipeconnect::Error->_plain("libpipeconnect reports an unreadable version '$v'");
    return ($1, $2, $3);
}

# Dies when $found cannot serve this binding; returns a warning text or undef.
sub check_version {
    my ($found, $wanted, $min) = @_;
    $wanted //= $LIBRARY_VERSION;
    $min //= $MIN_LIBRARY_VERSION;
    my @f = _version_parts($found);
    my @w = _version_parts($wanted);
    my @m = _version_parts($min);
    my $cmp = sub { my ($a, $b) = @_; $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] || $a->[2] <=> $b->[2] };
    die "libpipeconnect $found is loaded, but the Perl binding was written for $wanted: "
        . "the major versions differ\n" if $f[0] != $w[0];
    die "libpipeconnect $found is loaded, but the Perl binding needs at least $min\n"
        if $cmp->(\@f, \@m) < 0;
    die "libpipeconnect $found is loaded, but the Perl binding was written for $wanted: "
        . "before 1.0 every minor version may change the C interface\n" if $f[0] == 0 && $f[1] != $w[1];
    return $cmp->(\@f, \@w) != 0 ? "libpipeconnect $found is loaded; the Perl binding was written for $wanted" : undef;
}

# name => [[argument types], return type]
our %FUNCTIONS = (
    pipeconnect_version => [[], 'string'],
    pipeconnect_version_number => [[], 'uint32'],
    pipeconnect_result_message => [['sint32'], 'string'],
    pipeconnect_result_is_error => [['sint32'], 'uint8'],
    pipeconnect_key_new => [['string', 'uint16', 'uint32', 'opaque*'], 'sint32'],
    pipeconnect_key_set_local => [['opaque', 'string'], 'sint32'],
    pipeconnect_key_set_ehlo_name => [['opaque', 'string'], 'sint32'],
    pipeconnect_key_with_tls => [['opaque', 'uint32', 'opaque*'], 'sint32'],
    pipeconnect_key_to_string => [['opaque', 'opaque', 'size_t', 'size_t*'], 'sint32'],
    pipeconnect_key_free => [['opaque'], 'void'],
    pipeconnect_caps_parse => [['opaque', 'size_t', 'uint32', 'opaque*'], 'sint32'],
    pipeconnect_caps_has => [['opaque', 'uint32', 'uint8*'], 'sint32'],
    pipeconnect_caps_flags => [['opaque', 'uint32*'], 'sint32'],
    pipeconnect_caps_size_limit => [['opaque', 'uint64*'], 'sint32'],
    pipeconnect_caps_limits => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_caps_limit => [['opaque', 'uint32', 'uint32*'], 'sint32'],
    pipeconnect_caps_auth_count => [['opaque', 'size_t*'], 'sint32'],
    pipeconnect_caps_auth_name => [['opaque', 'size_t', 'opaque*'], 'sint32'],
    pipeconnect_caps_has_auth => [['opaque', 'string', 'uint8*'], 'sint32'],
    pipeconnect_caps_fingerprint => [['opaque', 'uint64*'], 'sint32'],
    pipeconnect_caps_learned_at => [['opaque', 'uint64*'], 'sint32'],
    pipeconnect_caps_free => [['opaque'], 'void'],
    pipeconnect_cache_new => [['size_t', 'uint64', 'opaque*'], 'sint32'],
    pipeconnect_cache_learn => [['opaque', 'opaque', 'opaque', 'size_t', 'uint32'], 'sint32'],
    pipeconnect_cache_learn_caps => [['opaque', 'opaque', 'opaque'], 'sint32'],
    pipeconnect_cache_lookup => [['opaque', 'opaque', 'opaque*'], 'sint32'],
    pipeconnect_cache_forget => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_cache_learn_qhlo_cookie => [['opaque', 'opaque', 'string'], 'sint32'],
    pipeconnect_cache_qhlo_cookie => [['opaque', 'opaque', 'opaque', 'size_t', 'size_t*'], 'sint32'],
    pipeconnect_cache_forget_qhlo_cookie => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_cache_clear => [['opaque'], 'sint32'],
    pipeconnect_cache_get_stats => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_cache_set_time => [['opaque', 'uint64'], 'sint32'],
    pipeconnect_hold_down_default => [['opaque'], 'sint32'],
    pipeconnect_cache_set_hold_down => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_cache_note_early_refused => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_cache_note_early_success => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_cache_held_down => [['opaque', 'opaque', 'uint64*'], 'sint32'],
    pipeconnect_cache_attach_shared => [['opaque', 'string', 'opaque', 'opaque'], 'sint32'],
    pipeconnect_cache_detach_shared => [['opaque'], 'sint32'],
    pipeconnect_cache_free => [['opaque'], 'void'],
    pipeconnect_server_prebanner_new => [['opaque', 'opaque*'], 'sint32'],
    pipeconnect_server_prebanner_feed => [['opaque', 'opaque', 'size_t'], 'sint32'],
    pipeconnect_server_prebanner_verdict => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_server_classify => [['opaque', 'opaque', 'size_t', 'opaque'], 'sint32'],
    pipeconnect_server_prebanner_free => [['opaque'], 'void'],
    pipeconnect_server_class_name => [['uint32'], 'string'],
    pipeconnect_server_reason_name => [['uint32'], 'string'],
    pipeconnect_quickstart_parse_greeting => [['opaque', 'size_t', 'uint32', 'opaque*'], 'sint32'],
    pipeconnect_quickstart_greeting_cookie => [['opaque', 'size_t', 'opaque', 'size_t', 'size_t*'], 'sint32'],
    pipeconnect_server_qhlo_cookie => [['opaque', 'size_t', 'string', 'uint64', 'opaque', 'size_t', 'size_t*'], 'sint32'],
    pipeconnect_server_qhlo_cookie_valid => [['opaque', 'size_t', 'string', 'uint64', 'string', 'bool*'], 'sint32'],
    pipeconnect_server_qhlo_epoch_secret => [['opaque', 'size_t', 'uint64', 'opaque', 'size_t'], 'sint32'],
    pipeconnect_store_options_default => [['opaque'], 'sint32'],
    pipeconnect_cache_open => [['string', 'opaque', 'opaque*', 'opaque'], 'sint32'],
    pipeconnect_policy_early_flight => [['opaque', 'opaque', 'opaque', 'opaque', 'size_t', 'size_t*', 'uint32*', 'opaque'], 'sint32'],
    pipeconnect_policy_early_flight_cached => [['opaque', 'opaque', 'opaque', 'opaque', 'opaque', 'size_t', 'size_t*', 'uint32*', 'opaque'], 'sint32'],
    pipeconnect_policy_used_extensions => [['opaque', 'size_t', 'uint32*'], 'sint32'],
    pipeconnect_policy_outcome => [['uint32', 'uint32', 'uint32', 'opaque', 'opaque'], 'sint32'],
    pipeconnect_policy_check_ehlo => [['opaque', 'opaque', 'uint32', 'opaque'], 'sint32'],
    pipeconnect_reason_name => [['uint32'], 'string'],
    pipeconnect_verdict_name => [['uint32'], 'string'],
    pipeconnect_command_name => [['uint32'], 'string'],
    pipeconnect_session_begin => [['opaque', 'opaque', 'opaque', 'opaque', 'opaque*', 'opaque'], 'sint32'],
    pipeconnect_session_flight => [['opaque', 'opaque', 'size_t', 'size_t*'], 'sint32'],
    pipeconnect_session_pending => [['opaque', 'size_t*', 'size_t*'], 'sint32'],
    pipeconnect_session_command_line => [['opaque', 'opaque', 'opaque', 'size_t', 'size_t*'], 'sint32'],
    pipeconnect_session_feed => [['opaque', 'opaque', 'size_t', 'size_t*'], 'sint32'],
    pipeconnect_session_next_event => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_session_tls_started => [['opaque'], 'sint32'],
    pipeconnect_session_reason => [['opaque', 'size_t*', 'uint32*'], 'sint32'],
    pipeconnect_session_is_done => [['opaque', 'uint8*'], 'sint32'],
    pipeconnect_session_finish => [['opaque', 'opaque'], 'sint32'],
    pipeconnect_session_quit => [['opaque'], 'sint32'],
    pipeconnect_session_server_caps => [['opaque', 'opaque*'], 'sint32'],
    pipeconnect_session_free => [['opaque'], 'void'],
    pipeconnect_tracker_begin => [['opaque', 'opaque', 'opaque*', 'opaque', 'opaque'], 'sint32'],
    pipeconnect_tracker_reply => [['opaque', 'uint32', 'uint32', 'opaque', 'size_t', 'opaque'], 'sint32'],
    pipeconnect_tracker_free => [['opaque'], 'void'],
);

our ($FFI, %C, $LIBRARY_PATH);

sub _load {
    my $ffi = FFI::Platypus->new(api => 1);
    my @tried;
    for my $cand (library_candidates()) {
        my ($how, $where) = @$cand;
        $ffi->lib($where);
        if ($ffi->find_symbol('pipeconnect_version')) {
            $LIBRARY_PATH = $where;
            last;
        }
        push @tried, "  $how: $where";
        $ffi->lib(undef);
    }
    die "libpipeconnect could not be loaded. Tried, in order:\n" . join("\n", @tried)
        . "\nSet $ENV_LIBRARY to the path of libpipeconnect.so, or install the library "
        . "(Debian: libpipeconnect0.2) so that " . soname() . " is found.\n"
        unless defined $LIBRARY_PATH;
    my $version = $ffi->function(pipeconnect_version => [] => 'string')->call;
    if (my $warning = check_version($version)) { warn "$warning\n" }
    my @missing;
    for my $name (sort keys %FUNCTIONS) {
        my ($args, $ret) = @{ $FUNCTIONS{$name} };
        my $f = eval { $ffi->function($name => $args => $ret) };
        if ($f) { $C{$name} = $f } else { push @missing, $name }
    }
    die "libpipeconnect $version at $LIBRARY_PATH lacks functions the Perl binding needs: @missing\n"
        if @missing;
    $FFI = $ffi;
}
_load();

sub library_path { $LIBRARY_PATH }
sub library_version { $C{pipeconnect_version}->call }
sub version { library_version() }
sub result_message { $C{pipeconnect_result_message}->call($_[0]) }
sub result_is_error { $C{pipeconnect_result_is_error}->call($_[0]) ? 1 : 0 }
sub result_name { $Pipeconnect::Constants::RESULT_NAME{ $_[0] } // "PIPECONNECT_RESULT_$_[0]" }
sub command_name { $C{pipeconnect_command_name}->call($_[0]) }
sub verdict_name { $C{pipeconnect_verdict_name}->call($_[0]) }
sub reason_name { $C{pipeconnect_reason_name}->call($_[0]) }

# Dies with a Pipeconnect::Error for an error result; returns the result otherwise.
sub _check {
    my ($rc, $what, $detail_buf) = @_;
    return $rc unless result_is_error($rc);
    my $detail;
    if (defined $detail_buf) {
        my $d = _unpack('pipeconnect_error_detail', $detail_buf);
        $detail = $d if $d->{result};
    }
    die Pipeconnect::Error->new($rc, $what, $detail);
}

sub _detail_buf { _pack('pipeconnect_error_detail', {}) }

sub _string_at {
    my ($ptr, $len) = @_;
    return '' if !$ptr || !$len;
    return buffer_to_scalar($ptr, $len);
}

# Commands for the policy: a list of hashes { kind, flags, size, mechanism } packed into
# one array; the strings are kept alive in @$keep for the call.
sub _commands {
    my ($cmds, $keep) = @_;
    my $buf = '';
    for my $c (@$cmds) {
        my %c = ref $c ? %$c : (kind => $c);
        $buf .= _pack('pipeconnect_command', \%c, $keep);
    }
    $buf = _pack('pipeconnect_command', {}) if $buf eq '';
    return $buf;
}

# --- Errors ---------------------------------------------------------------------------

package Pipeconnect::Error;
use overload '""' => sub { $_[0]->as_string }, fallback => 1;

sub new {
    my ($class, $code, $what, $detail) = @_;
    return bless { code => $code, name => Pipeconnect::result_name($code),
        message => Pipeconnect::result_message($code), what => $what, detail => $detail,
        events => [] }, $class;
}
sub _plain { my ($class, $text) = @_; return "$text\n" }
sub code { $_[0]{code} }
sub name { $_[0]{name} }
sub message { $_[0]{message} }
sub detail { $_[0]{detail} }
sub events { @{ $_[0]{events} } }
sub as_string {
    my ($self) = @_;
    my $s = "$self->{what}: $self->{name} ($self->{code}): $self->{message}";
    $s .= " [$self->{detail}{field}: $self->{detail}{message}]"
        if $self->{detail} && length($self->{detail}{message} // '');
    return "$s\n";
}

# --- Key ------------------------------------------------------------------------------

package Pipeconnect::Key;
use overload '""' => sub { $_[0]->to_string }, fallback => 1;

sub new {
    my ($class, $server, $port, $tls) = @_;
    my $p;
    Pipeconnect::_check($C{pipeconnect_key_new}->call($server, $port // 25, $tls // 0, \$p), 'key_new');
    return bless { ptr => $p, pid => $$ }, $class;
}
sub ptr { $_[0]{ptr} }
sub set_local {
    my ($self, $addr) = @_;
    Pipeconnect::_check($C{pipeconnect_key_set_local}->call($self->{ptr}, $addr), 'key_set_local');
    return $self;
}
sub set_ehlo_name {
    my ($self, $name) = @_;
    Pipeconnect::_check($C{pipeconnect_key_set_ehlo_name}->call($self->{ptr}, $name), 'key_set_ehlo_name');
    return $self;
}
sub with_tls {
    my ($self, $tls) = @_;
    my $p;
    Pipeconnect::_check($C{pipeconnect_key_with_tls}->call($self->{ptr}, $tls, \$p), 'key_with_tls');
    return bless { ptr => $p, pid => $$ }, ref $self;
}
sub to_string {
    my ($self) = @_;
    my $buf = "\0" x (Pipeconnect::Constants::PIPECONNECT_KEY_STRING_MAX() + 1);
    my $len = 0;
    Pipeconnect::_check($C{pipeconnect_key_to_string}->call($self->{ptr}, Pipeconnect::_buf_ptr($buf), length $buf, \$len), 'key_to_string');
    return substr $buf, 0, $len;
}
sub DESTROY { my ($self) = @_; my $free = $C{pipeconnect_key_free}; $free->call(delete $self->{ptr}) if $free && $self->{ptr} }

# --- Capabilities ---------------------------------------------------------------------

package Pipeconnect::Caps;

sub _wrap { my ($class, $p) = @_; return $p ? bless({ ptr => $p }, $class) : undef }
sub parse {
    my ($class, $reply, $flags) = @_;
    my ($ptr, $len) = FFI::Platypus::Buffer::scalar_to_buffer($reply);
    my $p;
    Pipeconnect::_check($C{pipeconnect_caps_parse}->call($ptr, $len, $flags // 0, \$p), 'caps_parse');
    return $class->_wrap($p);
}
sub ptr { $_[0]{ptr} }
sub has {
    my ($self, $ext) = @_;
    my $b = 0;
    Pipeconnect::_check($C{pipeconnect_caps_has}->call($self->{ptr}, $ext, \$b), 'caps_has');
    return $b ? 1 : 0;
}
sub flags { my $f = 0; Pipeconnect::_check($C{pipeconnect_caps_flags}->call($_[0]{ptr}, \$f), 'caps_flags'); $f }
sub size_limit { my $v = 0; Pipeconnect::_check($C{pipeconnect_caps_size_limit}->call($_[0]{ptr}, \$v), 'caps_size_limit'); $v }
sub fingerprint { my $v = 0; Pipeconnect::_check($C{pipeconnect_caps_fingerprint}->call($_[0]{ptr}, \$v), 'caps_fingerprint'); $v }
sub learned_at { my $v = 0; Pipeconnect::_check($C{pipeconnect_caps_learned_at}->call($_[0]{ptr}, \$v), 'caps_learned_at'); $v }
sub limits {
    my ($self) = @_;
    my $buf = Pipeconnect::_pack('pipeconnect_limits', {});
    Pipeconnect::_check($C{pipeconnect_caps_limits}->call($self->{ptr}, Pipeconnect::_buf_ptr($buf)), 'caps_limits');
    return Pipeconnect::_unpack('pipeconnect_limits', $buf);
}
# The value of one LIMITS item, or undef when the server did not give it.
sub limit {
    my ($self, $which) = @_;
    my $v = 0;
    my $rc = Pipeconnect::_check($C{pipeconnect_caps_limit}->call($self->{ptr}, $which, \$v), 'caps_limit');
    return $rc == Pipeconnect::Constants::PIPECONNECT_NOT_FOUND() ? undef : $v;
}
sub auth_names {
    my ($self) = @_;
    my $n = 0;
    Pipeconnect::_check($C{pipeconnect_caps_auth_count}->call($self->{ptr}, \$n), 'caps_auth_count');
    my @names;
    for my $i (0 .. $n - 1) {
        my $p;
        Pipeconnect::_check($C{pipeconnect_caps_auth_name}->call($self->{ptr}, $i, \$p), 'caps_auth_name');
        push @names, $Pipeconnect::FFI->cast('opaque' => 'string', $p);
    }
    return @names;
}
sub has_auth {
    my ($self, $mech) = @_;
    my $b = 0;
    Pipeconnect::_check($C{pipeconnect_caps_has_auth}->call($self->{ptr}, $mech, \$b), 'caps_has_auth');
    return $b ? 1 : 0;
}
sub DESTROY { my ($self) = @_; my $free = $C{pipeconnect_caps_free}; $free->call(delete $self->{ptr}) if $free && $self->{ptr} }

# --- Cache ----------------------------------------------------------------------------

package Pipeconnect::Cache;

# In-process: Pipeconnect::Cache->new(capacity => N, ttl => SECONDS) (0: the defaults).
sub new {
    my ($class, %o) = @_;
    my $p;
    Pipeconnect::_check($C{pipeconnect_cache_new}->call($o{capacity} // 0, $o{ttl} // 0, \$p), 'cache_new');
    return bless { ptr => $p }, $class;
}
# The shared file store: Pipeconnect::Cache->open($path, sets => , ways => , ttl_seconds => ,
# mode => , flags => , ...) (the fields of pipeconnect_store_options; 0: default).
sub open {
    my ($class, $path, %o) = @_;
    my $opts = Pipeconnect::_pack('pipeconnect_store_options', \%o);
    my $detail = Pipeconnect::_detail_buf();
    my $p;
    Pipeconnect::_check($C{pipeconnect_cache_open}->call($path, Pipeconnect::_buf_ptr($opts), \$p, Pipeconnect::_buf_ptr($detail)),
        "cache_open $path", $detail);
    return bless { ptr => $p }, $class;
}
sub ptr { $_[0]{ptr} }
# 1: stored; 0: not worth caching (no PIPECONNECT; an older entry may have been removed).
sub learn {
    my ($self, $key, $reply, $flags) = @_;
    my ($ptr, $len) = FFI::Platypus::Buffer::scalar_to_buffer($reply);
    my $rc = Pipeconnect::_check($C{pipeconnect_cache_learn}->call($self->{ptr}, $key->ptr, $ptr, $len, $flags // 0), 'cache_learn');
    return $rc == 0 ? 1 : 0;
}
sub learn_caps {
    my ($self, $key, $caps) = @_;
    my $rc = Pipeconnect::_check($C{pipeconnect_cache_learn_caps}->call($self->{ptr}, $key->ptr, $caps->ptr), 'cache_learn_caps');
    return $rc == 0 ? 1 : 0;
}
# A Pipeconnect::Caps, or undef on a miss (or after the time to live).
sub lookup {
    my ($self, $key) = @_;
    my $p;
    my $rc = Pipeconnect::_check($C{pipeconnect_cache_lookup}->call($self->{ptr}, $key->ptr, \$p), 'cache_lookup');
    return $rc == 0 ? Pipeconnect::Caps->_wrap($p) : undef;
}
sub forget {
    my ($self, $key) = @_;
    return Pipeconnect::_check($C{pipeconnect_cache_forget}->call($self->{ptr}, $key->ptr), 'cache_forget') == 0 ? 1 : 0;
}
# Experimental (SMTP QUICKSTART): keep a greeting's QHLO cookie for the key's server.
sub learn_qhlo_cookie {
    my ($self, $key, $cookie) = @_;
    Pipeconnect::_check($C{pipeconnect_cache_learn_qhlo_cookie}->call($self->{ptr}, $key->ptr, $cookie), 'cache_learn_qhlo_cookie');
    return 1;
}
# The QHLO cookie kept for the key's server, or undef.
sub qhlo_cookie {
    my ($self, $key) = @_;
    my $buf = "\0" x (Pipeconnect::Constants::PIPECONNECT_QHLO_COOKIE_MAX() + 1);
    my $len = 0;
    my $rc = Pipeconnect::_check($C{pipeconnect_cache_qhlo_cookie}->call($self->{ptr}, $key->ptr, Pipeconnect::_buf_ptr($buf), length $buf, \$len), 'cache_qhlo_cookie');
    return $rc == 0 ? substr($buf, 0, $len) : undef;
}
sub forget_qhlo_cookie {
    my ($self, $key) = @_;
    return Pipeconnect::_check($C{pipeconnect_cache_forget_qhlo_cookie}->call($self->{ptr}, $key->ptr), 'cache_forget_qhlo_cookie') == 0 ? 1 : 0;
}
sub clear { Pipeconnect::_check($C{pipeconnect_cache_clear}->call($_[0]{ptr}), 'cache_clear'); 1 }
sub stats {
    my ($self) = @_;
    my $buf = Pipeconnect::_pack('pipeconnect_cache_stats', {});
    Pipeconnect::_check($C{pipeconnect_cache_get_stats}->call($self->{ptr}, Pipeconnect::_buf_ptr($buf)), 'cache_get_stats');
    return Pipeconnect::_unpack('pipeconnect_cache_stats', $buf);
}
# Pin the cache's clock at $seconds (Unix time); 0 returns to the real clock.
sub set_time { Pipeconnect::_check($C{pipeconnect_cache_set_time}->call($_[0]{ptr}, $_[1]), 'cache_set_time'); 1 }
sub hold_down_default {
    my $buf = Pipeconnect::_pack('pipeconnect_hold_down', {});
    Pipeconnect::_check($C{pipeconnect_hold_down_default}->call(Pipeconnect::_buf_ptr($buf)), 'hold_down_default');
    return Pipeconnect::_unpack('pipeconnect_hold_down', $buf);
}
sub set_hold_down {
    my ($self, %o) = @_;
    my $buf = Pipeconnect::_pack('pipeconnect_hold_down', \%o);
    Pipeconnect::_check($C{pipeconnect_cache_set_hold_down}->call($self->{ptr}, Pipeconnect::_buf_ptr($buf)), 'cache_set_hold_down');
    return 1;
}
sub note_early_refused { Pipeconnect::_check($C{pipeconnect_cache_note_early_refused}->call($_[0]{ptr}, $_[1]->ptr), 'cache_note_early_refused'); 1 }
sub note_early_success { Pipeconnect::_check($C{pipeconnect_cache_note_early_success}->call($_[0]{ptr}, $_[1]->ptr), 'cache_note_early_success'); 1 }
# Seconds left in the key's hold-down; 0 when it is not held down.
sub held_down {
    my ($self, $key) = @_;
    my $v = 0;
    my $rc = Pipeconnect::_check($C{pipeconnect_cache_held_down}->call($self->{ptr}, $key->ptr, \$v), 'cache_held_down');
    return $rc == 0 ? $v : 0;
}
sub DESTROY { my ($self) = @_; my $free = $C{pipeconnect_cache_free}; $free->call(delete $self->{ptr}) if $free && $self->{ptr} }

# --- Policy ---------------------------------------------------------------------------

package Pipeconnect::Policy;

# early_flight($caps_or_undef, \@commands, situation => {...}, settings => {...})
# returns (allowed, reason): how many of the commands may go before waiting, and why not more.
sub early_flight {
    my ($caps, $cmds, %o) = @_;
    my @keep;
    my $cbuf = Pipeconnect::_commands($cmds, \@keep);
    my $sit = Pipeconnect::_pack('pipeconnect_situation', $o{situation});
    my $set = Pipeconnect::_pack('pipeconnect_settings', $o{settings});
    my $detail = Pipeconnect::_detail_buf();
    my ($n, $reason) = (0, 0);
    Pipeconnect::_check($C{pipeconnect_policy_early_flight}->call($caps ? $caps->ptr : undef,
        Pipeconnect::_buf_ptr($sit), Pipeconnect::_buf_ptr($set), Pipeconnect::_buf_ptr($cbuf), scalar @$cmds,
        \$n, \$reason, Pipeconnect::_buf_ptr($detail)), 'policy_early_flight', $detail);
    return ($n, $reason);
}
sub early_flight_cached {
    my ($cache, $key, $cmds, %o) = @_;
    my @keep;
    my $cbuf = Pipeconnect::_commands($cmds, \@keep);
    my $sit = Pipeconnect::_pack('pipeconnect_situation', $o{situation});
    my $set = Pipeconnect::_pack('pipeconnect_settings', $o{settings});
    my $detail = Pipeconnect::_detail_buf();
    my ($n, $reason) = (0, 0);
    Pipeconnect::_check($C{pipeconnect_policy_early_flight_cached}->call($cache->ptr, $key->ptr,
        Pipeconnect::_buf_ptr($sit), Pipeconnect::_buf_ptr($set), Pipeconnect::_buf_ptr($cbuf), scalar @$cmds,
        \$n, \$reason, Pipeconnect::_buf_ptr($detail)), 'policy_early_flight_cached', $detail);
    return ($n, $reason);
}
sub used_extensions {
    my ($cmds) = @_;
    my @keep;
    my $cbuf = Pipeconnect::_commands($cmds, \@keep);
    my $used = 0;
    Pipeconnect::_check($C{pipeconnect_policy_used_extensions}->call(Pipeconnect::_buf_ptr($cbuf), scalar @$cmds, \$used), 'policy_used_extensions');
    return $used;
}
# outcome($answered_kind, $code, $context_flags, settings => {...}) -> { cache, verdict, flags }
sub outcome {
    my ($kind, $code, $context, %o) = @_;
    my $set = Pipeconnect::_pack('pipeconnect_settings', $o{settings});
    my $out = Pipeconnect::_pack('pipeconnect_outcome', {});
    Pipeconnect::_check($C{pipeconnect_policy_outcome}->call($kind, $code, $context // 0,
        Pipeconnect::_buf_ptr($set), Pipeconnect::_buf_ptr($out)), 'policy_outcome');
    return Pipeconnect::_unpack('pipeconnect_outcome', $out);
}
sub check_ehlo {
    my ($cached, $fresh, $used) = @_;
    my $out = Pipeconnect::_pack('pipeconnect_ehlo_check', {});
    Pipeconnect::_check($C{pipeconnect_policy_check_ehlo}->call($cached->ptr, $fresh->ptr, $used // 0,
        Pipeconnect::_buf_ptr($out)), 'policy_check_ehlo');
    return Pipeconnect::_unpack('pipeconnect_ehlo_check', $out);
}

# --- Session --------------------------------------------------------------------------

package Pipeconnect::Session;

# Pipeconnect::Session->begin($cache, $key, intent => { ehlo_name, mail_from, rcpts => [...],
#     body_size, body_mode, flags, auth_mechanism }, settings => { flags, max_first_flight_body })
sub begin {
    my ($class, $cache, $key, %o) = @_;
    my %intent = %{ $o{intent} || {} };
    my @rcpts = @{ delete $intent{rcpts} || [] };
    my @keep = map { "$_\0" } @rcpts;
    my $rcpt_array = join '', map { pack 'J', Pipeconnect::_buf_ptr($_) } @keep;
    $intent{rcpts} = @rcpts ? Pipeconnect::_buf_ptr($rcpt_array) : 0;
    $intent{rcpt_count} = scalar @rcpts;
    my $ibuf = Pipeconnect::_pack('pipeconnect_intent', \%intent, \@keep);
    my $sbuf = Pipeconnect::_pack('pipeconnect_settings', $o{settings});
    my $detail = Pipeconnect::_detail_buf();
    my $p;
    Pipeconnect::_check($C{pipeconnect_session_begin}->call($cache->ptr, $key->ptr, Pipeconnect::_buf_ptr($ibuf),
        Pipeconnect::_buf_ptr($sbuf), \$p, Pipeconnect::_buf_ptr($detail)), 'session_begin', $detail);
    return bless { ptr => $p, cache => $cache, key => $key }, $class;
}
sub ptr { $_[0]{ptr} }
# The commands to send now, as hashes { seq, kind, flags, rcpt_index, size }.
sub flight {
    my ($self) = @_;
    my $l = $Pipeconnect::LAYOUT{pipeconnect_session_command};
    my $cap = 16;
    my @out;
    while (1) {
        my $buf = Pipeconnect::_pack('pipeconnect_session_command', {}) x $cap;
        my $n = 0;
        Pipeconnect::_check($C{pipeconnect_session_flight}->call($self->{ptr}, Pipeconnect::_buf_ptr($buf), $cap, \$n), 'session_flight');
        push @out, map { Pipeconnect::_unpack('pipeconnect_session_command', substr($buf, $_ * $l->{size}, $l->{size})) } 0 .. $n - 1;
        last if $n < $cap;
    }
    return @out;
}
# The line to send for a command from flight(), with its CRLF.
sub command_line {
    my ($self, $cmd) = @_;
    my $cbuf = Pipeconnect::_pack('pipeconnect_session_command', $cmd);
    my $buf = "\0" x 1024;
    my $len = 0;
    Pipeconnect::_check($C{pipeconnect_session_command_line}->call($self->{ptr}, Pipeconnect::_buf_ptr($cbuf),
        Pipeconnect::_buf_ptr($buf), length $buf, \$len), 'session_command_line');
    return substr $buf, 0, $len;
}
sub _events {
    my ($self) = @_;
    my @events;
    while (1) {
        my $buf = Pipeconnect::_pack('pipeconnect_event', {});
        my $rc = Pipeconnect::_check($C{pipeconnect_session_next_event}->call($self->{ptr}, Pipeconnect::_buf_ptr($buf)), 'session_next_event');
        last if $rc != 0;
        my $e = Pipeconnect::_unpack('pipeconnect_event', $buf);
        $e->{text} = Pipeconnect::_string_at(delete $e->{text}, delete $e->{text_len});
        $e->{raw} = Pipeconnect::_string_at(delete $e->{raw}, delete $e->{raw_len});
        push @events, $e;
    }
    return @events;
}
# Reply bytes as read (any split); returns one event hash per complete reply
# { seq, kind, verdict, flags, code, rcpt_index, text, raw, ... }. On an error result the
# exception's events() holds the events decided before it.
sub feed {
    my ($self, $data) = @_;
    my ($ptr, $len) = FFI::Platypus::Buffer::scalar_to_buffer($data);
    my $n = 0;
    my $rc = $C{pipeconnect_session_feed}->call($self->{ptr}, $ptr, $len, \$n);
    my @events = $self->_events;
    if (Pipeconnect::result_is_error($rc)) {
        my $e = Pipeconnect::Error->new($rc, 'session_feed');
        $e->{events} = \@events;
        die $e;
    }
    return @events;
}
sub pending {
    my ($self) = @_;
    my ($c, $e) = (0, 0);
    Pipeconnect::_check($C{pipeconnect_session_pending}->call($self->{ptr}, \$c, \$e), 'session_pending');
    return ($c, $e);
}
sub tls_started { Pipeconnect::_check($C{pipeconnect_session_tls_started}->call($_[0]{ptr}), 'session_tls_started'); 1 }
# (allowed, reason) of the current phase's early flight.
sub reason {
    my ($self) = @_;
    my ($n, $r) = (0, 0);
    Pipeconnect::_check($C{pipeconnect_session_reason}->call($self->{ptr}, \$n, \$r), 'session_reason');
    return ($n, $r);
}
sub is_done {
    my ($self) = @_;
    my $b = 0;
    Pipeconnect::_check($C{pipeconnect_session_is_done}->call($self->{ptr}, \$b), 'session_is_done');
    return $b ? 1 : 0;
}
sub quit { Pipeconnect::_check($C{pipeconnect_session_quit}->call($_[0]{ptr}), 'session_quit'); 1 }
sub finish {
    my ($self) = @_;
    my $buf = Pipeconnect::_pack('pipeconnect_summary', {});
    Pipeconnect::_check($C{pipeconnect_session_finish}->call($self->{ptr}, Pipeconnect::_buf_ptr($buf)), 'session_finish');
    return Pipeconnect::_unpack('pipeconnect_summary', $buf);
}
sub server_caps {
    my ($self) = @_;
    my $p;
    my $rc = Pipeconnect::_check($C{pipeconnect_session_server_caps}->call($self->{ptr}, \$p), 'session_server_caps');
    return $rc == 0 ? Pipeconnect::Caps->_wrap($p) : undef;
}
sub DESTROY { my ($self) = @_; my $free = $C{pipeconnect_session_free}; $free->call(delete $self->{ptr}) if $free && $self->{ptr} }

package Pipeconnect::Tracker;

# For an MTA that writes its own commands and reads its own replies:
# Pipeconnect::Tracker->begin($cache, server => '192.0.2.1', port => 25, rcpt_count => 1,
#     flags => PIPECONNECT_TRACKER_EARLY_ALLOWED, phase, message_size, relies_on, required,
#     ignored_keywords). $t->plan is { mode, reason, command_count, extensions, size_limit }.
sub begin {
    my ($class, $cache, %req) = @_;
    my @keep;
    $req{port} //= 25;
    my $rbuf = Pipeconnect::_pack('pipeconnect_tracker_request', \%req, \@keep);
    my $pbuf = Pipeconnect::_pack('pipeconnect_tracker_plan', {});
    my $detail = Pipeconnect::_detail_buf();
    my $p;
    Pipeconnect::_check($C{pipeconnect_tracker_begin}->call($cache->ptr, Pipeconnect::_buf_ptr($rbuf), \$p,
        Pipeconnect::_buf_ptr($pbuf), Pipeconnect::_buf_ptr($detail)), 'tracker_begin', $detail);
    return bless { ptr => $p, cache => $cache, plan => Pipeconnect::_unpack('pipeconnect_tracker_plan', $pbuf) }, $class;
}
sub ptr { $_[0]{ptr} }
sub plan { $_[0]{plan} }
# $t->reply($kind, $code, $text): { action, verdict, flags, extensions, size_limit }.
sub reply {
    my ($self, $kind, $code, $text) = @_;
    $text //= '';
    my $buf = Pipeconnect::_pack('pipeconnect_tracker_step', {});
    my $tbuf = "$text\0";
    Pipeconnect::_check($C{pipeconnect_tracker_reply}->call($self->{ptr}, $kind, $code,
        Pipeconnect::_buf_ptr($tbuf), length $text, Pipeconnect::_buf_ptr($buf)), 'tracker_reply');
    return Pipeconnect::_unpack('pipeconnect_tracker_step', $buf);
}
sub DESTROY { my ($self) = @_; my $free = $C{pipeconnect_tracker_free}; $free->call(delete $self->{ptr}) if $free && $self->{ptr} }

package Pipeconnect;
1;
