<?php
// Demo suppliers script (docs/protocol.md, Suppliers step; docs/scripts.md, The demo scripts).
// stdin: the search request as one JSON object, e.g.
//   {"code":"normal","brand":"ctr","apikey":"111111","analog":1}
// stdout: {"suppliers":[...]}, one object per supplier the client may search.
// The request `code` picks the scenario; any other code behaves like `normal`, so a
// shop's real part numbers still show something.
// A real script would check `apikey` here (the aggregator authorises nobody); the demo
// does not check it.

require __DIR__ . '/lib.php';

$request = demo_read_input(true);
demo_delay();

$code = demo_field($request, 'code', '');
$brand = demo_field($request, 'brand', '');
$analog = demo_field($request, 'analog', 0);

// Scenarios that do not return a supplier list.
switch ((string) $code) {
    case 'suppliersTimeout':
        demo_hang();
        break;
    case 'suppliersError':
        demo_fail('demo: suppliers script failed on purpose (suppliersError)', 1);
        break;
    case 'suppliersNotJson':
        echo "demo: this is not JSON (suppliersNotJson)\n";
        exit(0);
    case 'suppliersBadResponse':
        demo_output(array('message' => 'demo: JSON without a suppliers array (suppliersBadResponse)'));
        exit(0);
}

// Scenario => supplier classes. The class prefix (before the last -N) tells items.php
// what to do.
$scenarios = array(
    'normal' => array('normal-1', 'normal-2', 'normal-3'),
    'analog' => array('normal-1', 'normal-2', 'analog-3'),
    'mixed' => array('normal-1', 'analog-2', 'error-3', 'timeout-4', 'badjson-5', 'badresponse-6'),
    'emptySuppliers' => array(),
    'emptyItems' => array('empty-1', 'empty-2', 'empty-3'),
    'itemsTimeout' => array('timeout-1', 'timeout-2', 'timeout-3'),
    'itemsError' => array('error-1', 'error-2'),
    'itemsBadJson' => array('badjson-1', 'badjson-2'),
    'itemsBadResponse' => array('badresponse-1', 'badresponse-2'),
    'analogLoop' => array('loop-1'),
);

if ((string) $code === 'sessionTimeout') {
    // One quick supplier, then far more slow ones than the pool can finish in time.
    $classes = array('normal-1');
    for ($n = 1; $n <= 2000; $n++) {
        $classes[] = 'timeout-' . $n;
    }
} elseif (isset($scenarios[(string) $code])) {
    $classes = $scenarios[(string) $code];
} else {
    $classes = $scenarios['normal'];
}

$suppliers = array();
foreach ($classes as $class) {
    $suppliers[] = demo_supplier($class, $code, $brand, $analog);
}
demo_output(array('suppliers' => $suppliers));
