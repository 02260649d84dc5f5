"""`make run`: the shop on this machine (shop_launcher.launcher)."""
