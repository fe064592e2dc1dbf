from mqtt_tls_probe.cli import console_main

console_main()
