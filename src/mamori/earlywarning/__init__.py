"""Early warning: registered assets, threat and vulnerability feeds, alerts (issue 11)."""
