"""The events this service publishes (the seed's publishers, one line each)."""

from ticketing_common.events import Publisher, Subject, TicketCreatedEvent, TicketUpdatedEvent


class TicketCreatedPublisher(Publisher[TicketCreatedEvent]):
    subject = Subject.TICKET_CREATED


class TicketUpdatedPublisher(Publisher[TicketUpdatedEvent]):
    subject = Subject.TICKET_UPDATED
