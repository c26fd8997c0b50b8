"""The Reflex web client: browse tickets, sign up/in/out, sell and edit tickets."""
