# Sourced by the other scripts: puts Swift on PATH.
if [ -x /opt/swift/usr/bin/swift ]; then export PATH=/opt/swift/usr/bin:$PATH; fi
