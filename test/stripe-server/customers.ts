/**
 * The Customers API of the test server: create (`metadata`, `description`, `email`, `name`) and retrieve.
 * A Customer is what a PaymentMethod is attached to so it can be used again (payment-methods.ts).
 */
import type { FormObject } from './form.ts';
import { invalidRequest, noSuch } from './errors.ts';
import { allowOnly, metadata, str } from './params.ts';
import { randomId } from './ids.ts';

export interface Customer {
  id: string;
  object: 'customer';
  address: null;
  balance: number;
  created: number;
  currency: string | null;
  default_source: string | null;
  delinquent: boolean;
  description: string | null;
  email: string | null;
  invoice_prefix: string;
  invoice_settings: { custom_fields: null; default_payment_method: string | null; footer: null; rendering_options: null };
  livemode: false;
  metadata: Record<string, string>;
  name: string | null;
  next_invoice_sequence: number;
  phone: string | null;
  preferred_locales: string[];
  shipping: null;
  tax_exempt: 'none';
  test_clock: null;
}

const CREATE_PARAMS = ['metadata', 'description', 'email', 'name', 'expand'];

export class Customers {
  readonly items = new Map<string, Customer>();

  constructor(private readonly now: () => number) {}

  create(params: FormObject): Customer {
    allowOnly(params, CREATE_PARAMS);
    const description = str(params, 'description');
    const email = str(params, 'email');
    const name = str(params, 'name');
    if (email !== undefined && (email.length > 512 || !/^[^@\s]+@[^@\s]+$/.test(email))) {
      throw invalidRequest(`Invalid email address: ${email}`, { param: 'email', code: 'email_invalid' });
    }
    if (name !== undefined && name.length > 256) throw invalidRequest('Invalid string: name is too long (at most 256 characters)', { param: 'name' });
    const id = randomId('cus', 14);
    const customer: Customer = {
      id,
      object: 'customer',
      address: null,
      balance: 0,
      created: Math.floor(this.now() / 1000),
      currency: null,
      default_source: null,
      delinquent: false,
      description: description ?? null,
      email: email ?? null,
      invoice_prefix: id.slice(4, 12).toUpperCase(),
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
      livemode: false,
      metadata: metadata(params) ?? {},
      name: name ?? null,
      next_invoice_sequence: 1,
      phone: null,
      preferred_locales: [],
      shipping: null,
      tax_exempt: 'none',
      test_clock: null,
    };
    this.items.set(id, customer);
    return structuredClone(customer);
  }

  retrieve(id: string): Customer {
    const customer = this.items.get(id);
    if (!customer) throw noSuch('customer', id, 'id');
    return structuredClone(customer);
  }

  /** For parameters naming a customer (`customer=cus_…`): unknown is a 400 on the parameter, as on Stripe. */
  require(id: string, param: string): Customer {
    const customer = this.items.get(id);
    if (!customer) throw noSuch('customer', id, param, 400);
    return customer;
  }
}
