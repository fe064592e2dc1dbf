from mqtt_tls_probe.cli import main

main()
