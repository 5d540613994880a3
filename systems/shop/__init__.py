"""shop: orders, inventory over gRPC, order events and e-mail (the COMP41720 lab 4 reference)."""
