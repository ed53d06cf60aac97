"""Recipients: addresses, lists and templates, suppression, one-click unsubscribe,
routing to an ISP's hosts, DNS evidence of dead domains."""
