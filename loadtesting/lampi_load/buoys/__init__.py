"""The buoy fleet test: sensor devices publish a fixed plan of measures; the site's fleet app proves delivery."""
