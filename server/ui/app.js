// The Ticks web page.
