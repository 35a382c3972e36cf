"""What a session's results look like to a reader: typed rows (``rows``), the text exporters
(``table``), plots and HTML, and the one place that writes report files (``files``)."""
