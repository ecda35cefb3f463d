"""The parties' side: the mobile web app a party opens from an SMS or a QR code (their case's
progress, the determination, a review request), and the rules behind it."""
