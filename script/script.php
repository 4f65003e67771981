<?php
// Echo script, the proof of concept (docs/protocol.md, Echo).
// stdin: any JSON value (the aggregator sends an object); stdout: {"php": <that value>}.
// Answers at once (no demo delay). Input that is not JSON => stderr, exit 1, which the
// aggregator reports as E_SCRIPT_ERROR.

require __DIR__ . '/lib.php';

demo_output(array('php' => demo_read_input(false)));
