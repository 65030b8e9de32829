import { Counter, Histogram, type Registry } from 'prom-client';

export interface HttpMetrics {
  observe(method: string, route: string, status: number, seconds: number): void;
}

export function createHttpMetrics(registry: Registry): HttpMetrics {
  const requests = new Counter({
    name: 'callplane_http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'callplane_http_request_duration_seconds',
    help: 'HTTP request duration by method and route pattern',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'callplane_http_errors_total',
    help: 'HTTP responses with status >= 400, by route pattern and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  return {
    observe(method, route, status, seconds) {
      const m = method.toUpperCase();
      requests.inc({ method: m, route, status: String(status) });
      duration.observe({ method: m, route }, seconds);
      if (status >= 400) errors.inc({ route, status: String(status) });
    },
  };
}
