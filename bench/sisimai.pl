#!/usr/bin/perl
# bench/sisimai.pl DIR - the peer of bench/bounce.sh: Sisimai (Debian's libsisimai-perl) reads
# every bounce in DIR and prints one line per recipient: file, recipient, status, reason.
use strict;
use warnings;
use Sisimai;

my $dir = shift or die "usage: bench/sisimai.pl DIR\n";
my $found = Sisimai->make($dir, 'delivered' => 1, 'vacation' => 1) || [];
for my $e (@$found) {
    my $file = $e->{'origin'} || '';
    $file =~ s{.*/}{};
    printf "%s\t%s\t%s\t%s\n", $file, $e->{'recipient'}->address, $e->{'deliverystatus'},
        $e->{'reason'};
}
